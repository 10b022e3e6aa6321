// Package docs holds tokken's documentation and the tests that keep it
// true: every shell command in README.md, CONTRIBUTING.md, BENCHMARKS.md
// and docs/*.md is run against the built binary or checked against the
// files, make targets and template it names; every environment variable
// tokken reads, every policy key, every template parameter, output and
// alarm, and every metric is documented; links and package paths resolve;
// and the example target-role template keeps its guard rails.
package docs

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tokken/tokken/handlers/lambdaevent"
	"github.com/tokken/tokken/infra/cfn"
	"github.com/tokken/tokken/infra/metrics"
)

// repo is the repository root, relative to this package.
const repo = ".."

// binary is the tokken executable built by TestMain.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tokken-docs-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "tokken")
	build := exec.Command("go", "build", "-o", binary, repo)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build tokken:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// eventsREADME documents the sample Lambda events for `tokken invoke`.
var eventsREADME = filepath.Join(repo, "testdata", "events", "README.md")

// docFiles are the documents whose commands are exercised.
func docFiles(t *testing.T) []string {
	t.Helper()
	files := []string{filepath.Join(repo, "README.md"), filepath.Join(repo, "CONTRIBUTING.md"), filepath.Join(repo, "BENCHMARKS.md"), eventsREADME}
	more, err := filepath.Glob(filepath.Join(repo, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, more...)
	if len(more) < 5 {
		t.Fatalf("found only %d documents in docs/", len(more))
	}
	return files
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// ---------------------------------------------------------------- commands

// command is one simple shell command found in a document.
type command struct {
	where    string   // file:line
	line     string   // the whole command line it came from
	env      []string // leading VAR=value assignments
	args     []string // words after the assignments
	wantExit int      // from a trailing "# exit N" comment
}

func (c command) String() string { return c.where + ": " + strings.Join(c.args, " ") }

// block is a fenced code block.
type block struct {
	lang  string
	line  int // of the first content line
	lines []string
}

func fencedBlocks(text string) []block {
	var out []block
	var cur *block
	for i, l := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(l)
		if strings.HasPrefix(trimmed, "```") {
			if cur == nil {
				cur = &block{lang: strings.TrimSpace(strings.TrimPrefix(trimmed, "```")), line: i + 2}
			} else {
				out = append(out, *cur)
				cur = nil
			}
			continue
		}
		if cur != nil {
			cur.lines = append(cur.lines, l)
		}
	}
	return out
}

func isShell(lang string) bool {
	switch lang {
	case "sh", "bash", "shell", "console":
		return true
	}
	return false
}

var exitComment = regexp.MustCompile(`#\s*exit (\d+)`)

// commandsIn extracts the simple commands of the shell blocks of a document.
func commandsIn(t *testing.T, file, text string) []command {
	t.Helper()
	var out []command
	for _, b := range fencedBlocks(text) {
		if !isShell(b.lang) {
			continue
		}
		for i := 0; i < len(b.lines); i++ {
			start := b.line + i
			l := b.lines[i]
			for strings.HasSuffix(l, "\\") && i+1 < len(b.lines) {
				i++
				l = strings.TrimSuffix(l, "\\") + " " + strings.TrimSpace(b.lines[i])
			}
			code, comment := splitComment(l)
			if strings.TrimSpace(code) == "" {
				continue
			}
			want := 0
			if m := exitComment.FindStringSubmatch(comment); m != nil {
				want, _ = strconv.Atoi(m[1])
			}
			simple, err := parseLine(code)
			if err != nil {
				t.Errorf("%s:%d: cannot parse %q: %v", file, start, code, err)
				continue
			}
			for _, words := range simple {
				c := command{where: fmt.Sprintf("%s:%d", filepath.Base(file), start), line: code, wantExit: want}
				for len(words) > 0 && isAssignment(words[0]) {
					c.env = append(c.env, words[0])
					words = words[1:]
				}
				c.args = words
				out = append(out, c)
			}
		}
	}
	return out
}

var (
	assignment = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=`)
	fdNumber   = regexp.MustCompile(`^\d$`)
)

func isAssignment(w string) bool { return assignment.MatchString(w) }

// splitComment cuts a line at a '#' that starts a shell comment (outside
// quotes, at the start or after a blank).
func splitComment(l string) (code, comment string) {
	var quote rune
	prev := ' '
	for i, r := range l {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			}
		case r == '\'' || r == '"':
			quote = r
		case r == '#' && (prev == ' ' || prev == '\t'):
			return l[:i], l[i:]
		}
		prev = r
	}
	return l, ""
}

// parseLine splits a command line into simple commands (on &&, ||, ;, |)
// and words, with quotes removed. Command substitutions $(…) are parsed
// recursively and their commands returned too; the substitution itself
// stays in the word as written. Redirections are dropped.
func parseLine(s string) ([][]string, error) {
	var cmds [][]string
	var words []string
	var cur strings.Builder
	inWord := false
	flushWord := func() {
		if inWord {
			words = append(words, cur.String())
			cur.Reset()
			inWord = false
		}
	}
	flushCmd := func() {
		flushWord()
		if len(words) > 0 {
			cmds = append(cmds, words)
		}
		words = nil
	}
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case r == '\'':
			j := i + 1
			for j < len(rs) && rs[j] != '\'' {
				j++
			}
			if j == len(rs) {
				return nil, fmt.Errorf("unterminated single quote")
			}
			cur.WriteString(string(rs[i+1 : j]))
			inWord, i = true, j
		case r == '"':
			j := i + 1
			for j < len(rs) && rs[j] != '"' {
				if rs[j] == '$' && j+1 < len(rs) && rs[j+1] == '(' {
					end, err := matchParen(rs, j+1)
					if err != nil {
						return nil, err
					}
					sub, err := parseLine(string(rs[j+2 : end]))
					if err != nil {
						return nil, err
					}
					cmds = append(cmds, sub...)
					cur.WriteString(string(rs[j : end+1]))
					j = end + 1
					continue
				}
				if rs[j] == '\\' && j+1 < len(rs) {
					j++
				}
				cur.WriteRune(rs[j])
				j++
			}
			if j == len(rs) {
				return nil, fmt.Errorf("unterminated double quote")
			}
			inWord, i = true, j
		case r == '$' && i+1 < len(rs) && rs[i+1] == '(':
			end, err := matchParen(rs, i+1)
			if err != nil {
				return nil, err
			}
			sub, err := parseLine(string(rs[i+2 : end]))
			if err != nil {
				return nil, err
			}
			cmds = append(cmds, sub...)
			cur.WriteString(string(rs[i : end+1]))
			inWord, i = true, end
		case r == '\\' && i+1 < len(rs):
			i++
			cur.WriteRune(rs[i])
			inWord = true
		case r == ' ' || r == '\t':
			flushWord()
		case r == ';' || r == '|' || r == '&':
			flushCmd()
			if i+1 < len(rs) && (rs[i+1] == r) {
				i++
			}
		case r == '>' || r == '<':
			// A redirection: drop it and its target (2>&1 included).
			flushWord()
			if len(words) > 0 && fdNumber.MatchString(words[len(words)-1]) {
				words = words[:len(words)-1]
			}
			j := i + 1
			if j < len(rs) && rs[j] == '>' {
				j++
			}
			if j < len(rs) && rs[j] == '&' {
				for j < len(rs) && rs[j] != ' ' {
					j++
				}
				i = j
				continue
			}
			for j < len(rs) && rs[j] == ' ' {
				j++
			}
			for j < len(rs) && rs[j] != ' ' {
				j++
			}
			i = j
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	flushCmd()
	return cmds, nil
}

func matchParen(rs []rune, open int) (int, error) {
	depth := 0
	var quote rune
	for j := open; j < len(rs); j++ {
		switch r := rs[j]; {
		case quote != 0:
			if r == quote {
				quote = 0
			}
		case r == '\'' || r == '"':
			quote = r
		case r == '(':
			depth++
		case r == ')':
			depth--
			if depth == 0 {
				return j, nil
			}
		}
	}
	return 0, fmt.Errorf("unterminated $(")
}

func TestParseLine(t *testing.T) {
	tests := []struct {
		in   string
		want [][]string
	}{
		{`go run . serve`, [][]string{{"go", "run", ".", "serve"}}},
		{`sam build && sam deploy --guided`, [][]string{{"sam", "build"}, {"sam", "deploy", "--guided"}}},
		{`X=$(aws iam get-role --role-name "$R" --query Role.Arn)`, [][]string{{"aws", "iam", "get-role", "--role-name", "$R", "--query", "Role.Arn"}, {"X=$(aws iam get-role --role-name \"$R\" --query Role.Arn)"}}},
		{`sed "s#a#b#g" in.yaml > /tmp/out.yaml`, [][]string{{"sed", "s#a#b#g", "in.yaml"}}},
		{`go run . serve 2>&1 | jq '.msg'`, [][]string{{"go", "run", ".", "serve"}, {"jq", ".msg"}}},
		{`a 'b c' "d e"; f`, [][]string{{"a", "b c", "d e"}, {"f"}}},
	}
	for _, tt := range tests {
		got, err := parseLine(tt.in)
		if err != nil {
			t.Fatalf("%s: %v", tt.in, err)
		}
		if fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("parseLine(%s)\n got %q\nwant %q", tt.in, got, tt.want)
		}
	}
	for _, bad := range []string{`echo 'x`, `echo "x`, `echo $(x`} {
		if _, err := parseLine(bad); err == nil {
			t.Errorf("parseLine(%s) accepted", bad)
		}
	}
}

// notRunHere lists the commands the docs may contain that cannot run in a
// test, each with the reason. They are still checked: the files, template
// parameters, outputs and resources they name must exist. A command not
// listed here and not runnable makes TestDocCommands fail.
func notRunHere() map[string]string {
	const aws = "needs an AWS account and a deployed stack"
	return map[string]string{
		"sam build":                          "needs the AWS SAM CLI; it runs `make build-IngressFunction`, whose target is checked",
		"sam deploy":                         "creates real AWS resources; --parameter-overrides keys are checked against template.yaml",
		"sam delete":                         "deletes a real stack",
		"aws cloudformation describe-stacks": aws + "; output keys named in --query are checked against template.yaml",
		"aws cloudformation describe-stack-resource": aws + "; --logical-resource-id is checked against template.yaml",
		"aws cloudformation deploy":                  aws + "; --template-file and --parameter-overrides are checked",
		"aws secretsmanager put-secret-value":        aws,
		"aws iam get-role":                           aws,
		"aws logs tail":                              aws,
		"aws sqs receive-message":                    aws,
		"aws sqs start-message-move-task":            aws,
		"aws sqs get-queue-attributes":               aws,
		"aws lambda invoke":                          aws + " (re-runs a given-up job on the worker)",
		"aws dynamodb delete-item":                   aws + " (removes a dead-letter record)",
		"aws ssm describe-sessions":                  aws + " with a live grant",
		"aws ssm terminate-session":                  aws + " with a live session",
		"aws ec2 modify-instance-metadata-options":   aws + " and an instance",
		"curl":              "calls the deployed stack's URL",
		"sed":               "renders the Slack manifest; the input file it names is checked",
		"cp":                "creates the developer's .env; the file it copies is checked",
		"rm":                "removes a file the reader created",
		"./scripts/test.sh": "is the test command itself (it runs this test); checked to exist and be executable",
		"./scripts/fuzz.sh": "runs every fuzz target; called by scripts/test.sh; checked to exist and be executable",
	}
}

// tokkenSubcommands run against the binary; serve is started and stopped.
var runnableTokken = []string{"help", "version", "policy", "invoke", "audit", "serve"}

func TestDocCommands(t *testing.T) {
	tpl, err := cfn.Load(filepath.Join(repo, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var all []command
	for _, f := range docFiles(t) {
		all = append(all, commandsIn(t, f, read(t, f))...)
	}
	if len(all) < 10 {
		t.Fatalf("found only %d commands in the docs", len(all))
	}
	work := workDir(t)
	allow := notRunHere()
	ran := 0
	for _, c := range all {
		if len(c.args) == 0 {
			continue // assignments only (e.g. a .env example)
		}
		checkPaths(t, c)
		switch prog := c.args[0]; {
		case prog == "tokken":
			runTokken(t, c, c.args[1:], work)
			ran++
		case prog == "go" && len(c.args) >= 3 && c.args[1] == "run" && c.args[2] == ".":
			runTokken(t, c, c.args[3:], work)
			ran++
		case prog == "go":
			checkGo(t, c)
		case prog == "make":
			checkMake(t, c)
		case prog == "sam":
			checkAllowed(t, c, allow, 2)
			checkSam(t, c, tpl)
		case prog == "aws":
			checkAllowed(t, c, allow, 3)
			checkAWS(t, c, tpl)
		case strings.HasPrefix(prog, "./scripts/"):
			checkAllowed(t, c, allow, 1)
			info, err := os.Stat(filepath.Join(repo, prog))
			if err != nil || info.Mode()&0o111 == 0 {
				t.Errorf("%s: %s is not an executable file in the repository", c.where, prog)
			}
		default:
			checkAllowed(t, c, allow, 1)
		}
	}
	if ran < 5 {
		t.Errorf("only %d tokken commands ran; the docs should show (and this test run) at least help, version, policy check, policy explain and serve", ran)
	}
}

// TestEventSamples: testdata/events holds a sample of every kind of event
// the README promises `tokken invoke` takes, and testdata/events/README.md
// invokes each sample (TestDocCommands runs those commands).
func TestEventSamples(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(repo, "testdata", "events", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	invoked := map[string]bool{}
	for _, c := range commandsIn(t, eventsREADME, read(t, eventsREADME)) {
		if n := len(c.args); n >= 5 && c.args[0] == "go" && c.args[3] == "invoke" {
			invoked[filepath.Base(c.args[4])] = true
		}
	}
	kinds := map[lambdaevent.Kind]bool{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		k, err := lambdaevent.Classify(raw)
		if err != nil {
			t.Errorf("%s: %v", filepath.Base(f), err)
		}
		kinds[k] = true
		if !invoked[filepath.Base(f)] {
			t.Errorf("%s is not invoked by a command in testdata/events/README.md", filepath.Base(f))
		}
	}
	for _, k := range []lambdaevent.Kind{lambdaevent.KindFunctionURL, lambdaevent.KindSQS, lambdaevent.KindSNS, lambdaevent.KindEventBridge, lambdaevent.KindJob} {
		if !kinds[k] {
			t.Errorf("no %s sample in testdata/events, though the README promises one", k)
		}
	}
}

func checkAllowed(t *testing.T, c command, allow map[string]string, words int) {
	t.Helper()
	key := strings.Join(c.args[:min(words, len(c.args))], " ")
	if _, ok := allow[key]; !ok {
		t.Errorf("%s: %q is neither runnable here nor allow-listed: add it to notRunHere with the reason it cannot run, or make the test run it", c.where, key)
	}
}

// workDir is the directory doc commands run in: the repository's policies
// and testdata linked in, and no .env, so a developer's own settings cannot
// change what the docs promise.
func workDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range []string{"policies", "testdata", "slackapp", "infra"} {
		abs, err := filepath.Abs(filepath.Join(repo, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(abs, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// docEnv is the environment of a reader who followed the README: a Slack
// app's credentials (here unusable ones, pointing at nothing) and the
// embedded store; nothing inherited but PATH.
func docEnv(dir string, extra []string) []string {
	env := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + dir,
		"SLACK_SIGNING_SECRET=docs-test-signing-secret",
		"SLACK_BOT_TOKEN=xoxb-docs-test",
		"SLACK_API_URL=http://127.0.0.1:9/api/",
		"TOKKEN_STORE=bolt:" + filepath.Join(dir, "tokken.db"),
		"TOKKEN_ADDR=127.0.0.1:0",
		"AWS_ACCESS_KEY_ID=AKIDDOCSTEST", "AWS_SECRET_ACCESS_KEY=docs-test",
		"AWS_EC2_METADATA_DISABLED=true",
	}
	return append(env, extra...)
}

func runTokken(t *testing.T, c command, args []string, dir string) {
	t.Helper()
	if len(args) == 0 || !slices.Contains(runnableTokken, args[0]) {
		t.Errorf("%s: tokken subcommand %q is not one the docs test can run (%v)", c.where, args, runnableTokken)
		return
	}
	for _, a := range args {
		if strings.ContainsAny(a, "$…") {
			t.Errorf("%s: %q has a placeholder; show a runnable example", c.where, a)
			return
		}
	}
	if args[0] == "serve" {
		runServe(t, c, dir)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Dir = dir
	cmd.Env = docEnv(dir, c.env)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Errorf("%s: %v", c, err)
			return
		}
		code = ee.ExitCode()
	}
	if code != c.wantExit {
		t.Errorf("%s: exit %d, the docs promise %d\nstdout:\n%s\nstderr:\n%s", c, code, c.wantExit, stdout.String(), stderr.String())
	}
	if stdout.Len() == 0 && stderr.Len() == 0 && args[0] != "audit" { // an empty trail prints nothing
		t.Errorf("%s: printed nothing", c)
	}
}

// runServe starts `tokken serve`, waits until it listens, asks /healthz
// through the log's address, then stops it with SIGINT: it must exit 0.
func runServe(t *testing.T, c command, dir string) {
	t.Helper()
	cmd := exec.Command(binary, "serve")
	cmd.Dir = dir
	cmd.Env = docEnv(dir, c.env)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	serving := make(chan string, 1)
	var logs bytes.Buffer
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			logs.WriteString(sc.Text() + "\n")
			var m struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &m) == nil && m.Msg == "tokken serving" {
				serving <- m.Addr
			}
		}
	}()
	select {
	case <-serving:
	case <-done:
		_ = cmd.Wait()
		t.Errorf("%s: serve exited before serving:\n%s", c, logs.String())
		return
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		_ = cmd.Wait()
		t.Errorf("%s: serve did not start:\n%s", c, logs.String())
		return
	}
	_ = cmd.Process.Signal(syscall.SIGINT)
	<-done
	if err := cmd.Wait(); err != nil {
		t.Errorf("%s: serve did not stop cleanly on SIGINT: %v\n%s", c, err, logs.String())
	}
}

// checkPaths requires every repository path a command names to exist: a
// word whose first path element is a top-level entry of the repository.
func checkPaths(t *testing.T, c command) {
	t.Helper()
	for _, w := range append(slices.Clone(c.args), c.env...) {
		if i := strings.IndexByte(w, '='); i >= 0 && strings.HasPrefix(w, "-") {
			w = w[i+1:]
		} else if isAssignment(w) {
			w = w[strings.IndexByte(w, '=')+1:]
		}
		w = strings.TrimPrefix(w, "file://")
		if w == "" || w == "." || strings.HasPrefix(w, "/") || strings.HasPrefix(w, "-") || strings.ContainsAny(w, "$*:…") {
			continue
		}
		first := strings.Split(filepath.ToSlash(w), "/")[0]
		if first == "." {
			first = strings.Split(strings.TrimPrefix(filepath.ToSlash(w), "./"), "/")[0]
		}
		if first == "" || first == ".." {
			continue
		}
		if _, err := os.Stat(filepath.Join(repo, first)); err != nil {
			continue // not a repository path (a file the reader creates, a value)
		}
		if _, err := os.Stat(filepath.Join(repo, w)); err != nil {
			t.Errorf("%s: names %s, which does not exist in the repository", c.where, w)
		}
	}
}

func checkGo(t *testing.T, c command) {
	t.Helper()
	if len(c.args) < 2 || !slices.Contains([]string{"test", "vet", "build", "run"}, c.args[1]) {
		t.Errorf("%s: go %v: only go run/test/vet/build are expected in the docs", c.where, c.args[1:])
		return
	}
	for _, a := range c.args[2:] {
		if !strings.HasPrefix(a, "./") {
			continue
		}
		dir := strings.TrimSuffix(strings.TrimSuffix(a, "..."), "/")
		if info, err := os.Stat(filepath.Join(repo, dir)); err != nil || !info.IsDir() {
			t.Errorf("%s: package pattern %s names no directory", c.where, a)
		}
	}
}

func checkMake(t *testing.T, c command) {
	t.Helper()
	makefile := read(t, filepath.Join(repo, "Makefile"))
	for _, target := range c.args[1:] {
		if strings.HasPrefix(target, "-") || strings.Contains(target, "=") {
			continue
		}
		if !regexp.MustCompile(`(?m)^([\w.-]+ )*` + regexp.QuoteMeta(target) + `( [\w.-]+)*:`).MatchString(makefile) {
			t.Errorf("%s: make target %q is not in the Makefile", c.where, target)
		}
	}
}

func flagValues(args []string, name string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		switch {
		case args[i] == name:
			for j := i + 1; j < len(args) && !strings.HasPrefix(args[j], "--"); j++ {
				out = append(out, args[j])
			}
		case strings.HasPrefix(args[i], name+"="):
			out = append(out, strings.TrimPrefix(args[i], name+"="))
		}
	}
	return out
}

func parameters(tpl *cfn.Template) map[string]any {
	m, _ := tpl.Raw["Parameters"].(map[string]any)
	return m
}

func outputs(tpl *cfn.Template) map[string]any {
	m, _ := tpl.Raw["Outputs"].(map[string]any)
	return m
}

func checkParameterOverrides(t *testing.T, c command, tpl *cfn.Template, name string) {
	t.Helper()
	params := parameters(tpl)
	for _, kv := range flagValues(c.args, "--parameter-overrides") {
		k, _, _ := strings.Cut(kv, "=")
		if _, ok := params[k]; !ok {
			t.Errorf("%s: parameter %s is not a parameter of %s", c.where, k, name)
		}
	}
}

func checkSam(t *testing.T, c command, tpl *cfn.Template) {
	t.Helper()
	checkParameterOverrides(t, c, tpl, "template.yaml")
	if len(c.args) > 1 && c.args[1] == "build" {
		// sam build runs the Makefile's build-<Function> targets.
		for _, id := range tpl.OfType("AWS::Serverless::Function") {
			checkMake(t, command{where: c.where, args: []string{"make", "build-" + id}})
		}
	}
}

var outputKeyRE = regexp.MustCompile(`OutputKey=='(\w+)'`)

// samImplicit are resources SAM generates for a function (its role, its
// Function URL), addressable by logical id in the deployed stack.
var samImplicit = []string{"Role", "Url"}

func checkAWS(t *testing.T, c command, tpl *cfn.Template) {
	t.Helper()
	for _, q := range flagValues(c.args, "--query") {
		for _, m := range outputKeyRE.FindAllStringSubmatch(q, -1) {
			if _, ok := outputs(tpl)[m[1]]; !ok {
				t.Errorf("%s: output %s is not an output of template.yaml", c.where, m[1])
			}
		}
	}
	for _, id := range flagValues(c.args, "--logical-resource-id") {
		if _, ok := tpl.Resources[id]; ok {
			continue
		}
		found := false
		for _, fn := range tpl.OfType("AWS::Serverless::Function") {
			for _, suffix := range samImplicit {
				found = found || id == fn+suffix
			}
		}
		if !found {
			t.Errorf("%s: resource %s is not in template.yaml (nor generated by SAM for a function)", c.where, id)
		}
	}
	if files := flagValues(c.args, "--template-file"); len(files) == 1 {
		other, err := cfn.Load(filepath.Join(repo, files[0]))
		if err != nil {
			t.Errorf("%s: %s: %v", c.where, files[0], err)
			return
		}
		checkParameterOverrides(t, c, other, files[0])
	}
}

// ---------------------------------------------------------------- reference completeness

var envLiteral = regexp.MustCompile(`"((?:TOKKEN|SLACK|MACKEREL)_[A-Z0-9_]+)"`)

// notVariables are literals that look like variables but are not read from
// the environment.
func notVariables() map[string]string {
	return map[string]string{
		"TOKKEN_HOST": "the placeholder host in slackapp/manifest.yaml, not a variable",
	}
}

// TestEveryVariableIsDocumented finds every TOKKEN_/SLACK_/MACKEREL_
// variable name in tokken's (non-test) source and requires it in
// docs/configuration.md.
func TestEveryVariableIsDocumented(t *testing.T) {
	ref := read(t, "configuration.md")
	skip := notVariables()
	seen := map[string]string{}
	err := filepath.WalkDir(repo, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(repo, path)
		if d.IsDir() {
			switch rel {
			case ".git", "testkit", "bench", "e2e", "docs", ".tools", "node_modules":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		for _, m := range envLiteral.FindAllStringSubmatch(read(t, path), -1) {
			seen[m[1]] = rel
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) < 20 {
		t.Fatalf("found only %d variables in the source: the scan is broken", len(seen))
	}
	for name, file := range seen {
		if _, ok := skip[name]; ok {
			continue
		}
		if !strings.Contains(ref, "`"+name+"`") {
			t.Errorf("%s (read in %s) is not documented in docs/configuration.md", name, file)
		}
	}
}

var stringList = regexp.MustCompile(`\[\]string\{([^}]*)\}`)
var quoted = regexp.MustCompile(`"([a-z_]+)"`)

// TestEveryPolicyKeyIsDocumented takes the key lists the policy loader
// accepts from its source and requires each key in docs/configuration.md.
func TestEveryPolicyKeyIsDocumented(t *testing.T) {
	ref := read(t, "configuration.md")
	keys := map[string]bool{}
	for _, f := range []string{"yaml.go", "routes.go"} {
		for _, list := range stringList.FindAllStringSubmatch(read(t, filepath.Join(repo, "policies", f)), -1) {
			for _, k := range quoted.FindAllStringSubmatch(list[1], -1) {
				keys[k[1]] = true
			}
		}
	}
	for _, must := range []string{"role_arn", "approver_channel", "slack_usergroups", "environment_channels", "tag_keys"} {
		if !keys[must] {
			t.Fatalf("key %s not found in the loader's source: the scan is broken (%v)", must, keys)
		}
	}
	for k := range keys {
		if !strings.Contains(ref, "`"+k+"`") {
			t.Errorf("policy key %s is not documented in docs/configuration.md", k)
		}
	}
}

// TestTemplateIsDocumented requires every parameter and output of
// template.yaml in docs/deploy.md and every alarm in docs/operations.md.
func TestTemplateIsDocumented(t *testing.T) {
	tpl, err := cfn.Load(filepath.Join(repo, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	deploy, ops := read(t, "deploy.md"), read(t, "operations.md")
	for name := range parameters(tpl) {
		if !strings.Contains(deploy, "`"+name+"`") {
			t.Errorf("template parameter %s is not documented in docs/deploy.md", name)
		}
	}
	for name := range outputs(tpl) {
		if !strings.Contains(deploy, "`"+name+"`") {
			t.Errorf("template output %s is not documented in docs/deploy.md", name)
		}
	}
	alarms := tpl.OfType("AWS::CloudWatch::Alarm")
	if len(alarms) == 0 {
		t.Fatal("template.yaml has no alarms")
	}
	for _, id := range alarms {
		if !strings.Contains(ops, "`"+id+"`") {
			t.Errorf("alarm %s is not documented in docs/operations.md", id)
		}
	}
}

func TestMetricsAreDocumented(t *testing.T) {
	ops := read(t, "operations.md")
	for _, d := range metrics.Known() {
		if !strings.Contains(ops, "`"+d.Name+"`") {
			t.Errorf("metric %s is not documented in docs/operations.md", d.Name)
		}
	}
}

// ---------------------------------------------------------------- links and paths

var (
	mdLink     = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	pkgPath    = regexp.MustCompile(`(?:^|[^\w/.-])((?:bot|handlers|infra)/[a-z0-9]+)([\w.-]*)`)
	headingRE  = regexp.MustCompile(`(?m)^#{1,6} (.+)$`)
	slugStrip  = regexp.MustCompile(`[^\p{L}\p{N} _-]`)
	resourceRE = regexp.MustCompile(`\b([A-Z][A-Za-z]+(?:Function|Queue|Topic|Secret|Schedule|Table|Alarm|LogGroup))\b`)
)

// slug is GitHub's heading anchor: lower case, punctuation removed,
// spaces to dashes.
func slug(h string) string {
	h = strings.ToLower(strings.TrimSpace(h))
	h = slugStrip.ReplaceAllString(h, "")
	return strings.ReplaceAll(h, " ", "-")
}

func anchors(text string) map[string]bool {
	out := map[string]bool{}
	inFence := false
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "```") {
			inFence = !inFence
			continue
		}
		if m := headingRE.FindStringSubmatch(l); m != nil && !inFence {
			out[slug(m[1])] = true
		}
	}
	return out
}

// TestLinksAndPathsResolve checks every relative link (and its #anchor)
// and every package path named in the docs.
func TestLinksAndPathsResolve(t *testing.T) {
	for _, f := range docFiles(t) {
		text := read(t, f)
		for _, m := range mdLink.FindAllStringSubmatch(text, -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			file, anchor, _ := strings.Cut(target, "#")
			path := f
			if file != "" {
				path = filepath.Join(filepath.Dir(f), file)
				if _, err := os.Stat(path); err != nil {
					t.Errorf("%s: link %s: no such file", filepath.Base(f), target)
					continue
				}
			}
			if anchor != "" && strings.HasSuffix(path, ".md") && !anchors(read(t, path))[anchor] {
				t.Errorf("%s: link %s: no heading with anchor #%s in %s", filepath.Base(f), target, anchor, filepath.Base(path))
			}
		}
		for _, m := range pkgPath.FindAllStringSubmatch(text, -1) {
			if m[2] != "" {
				continue // a file such as infra/target-role.yaml (links are checked above)
			}
			if info, err := os.Stat(filepath.Join(repo, m[1])); err != nil || !info.IsDir() {
				t.Errorf("%s: names package %s, which does not exist", filepath.Base(f), m[1])
			}
		}
	}
}

// TestArchitectureDiagramMatchesCode requires the Mermaid diagrams to name
// only packages and template resources that exist, and to cover every
// feature package.
func TestArchitectureDiagramMatchesCode(t *testing.T) {
	tpl, err := cfn.Load(filepath.Join(repo, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var mermaid strings.Builder
	for _, b := range fencedBlocks(read(t, "architecture.md")) {
		if b.lang == "mermaid" {
			mermaid.WriteString(strings.Join(b.lines, "\n"))
		}
	}
	text := mermaid.String()
	if text == "" {
		t.Fatal("architecture.md has no Mermaid diagram")
	}
	for _, m := range pkgPath.FindAllStringSubmatch(text, -1) {
		if m[2] != "" {
			continue
		}
		if _, err := os.Stat(filepath.Join(repo, m[1])); err != nil {
			t.Errorf("diagram names package %s, which does not exist", m[1])
		}
	}
	for _, m := range resourceRE.FindAllStringSubmatch(text, -1) {
		if _, ok := tpl.Resources[m[1]]; !ok {
			t.Errorf("diagram names resource %s, which is not in template.yaml", m[1])
		}
	}
	for _, id := range tpl.OfType("AWS::Serverless::Function") {
		if !strings.Contains(text, id) {
			t.Errorf("deployed diagram lacks function %s", id)
		}
	}
	entries, err := os.ReadDir(filepath.Join(repo, "bot"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() && e.Name() != "storetest" && !strings.Contains(text, "bot/"+e.Name()) {
			t.Errorf("package diagram lacks bot/%s", e.Name())
		}
	}
}

// ---------------------------------------------------------------- the target-role template

func statements(doc any) []map[string]any {
	m, _ := doc.(map[string]any)
	var out []map[string]any
	switch s := m["Statement"].(type) {
	case []any:
		for _, x := range s {
			if sm, ok := x.(map[string]any); ok {
				out = append(out, sm)
			}
		}
	case map[string]any:
		out = append(out, s)
	}
	return out
}

func strs(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		var out []string
		for _, e := range x {
			s, _ := e.(string)
			out = append(out, s)
		}
		return out
	}
	return nil
}

// TestTargetRoleTemplate guards infra/target-role.yaml: one role, trusted
// by the tokken worker role alone with exactly AssumeRole, SetSourceIdentity
// and TagSession, tagged tokken:grantable=true, MaxSessionDuration between
// 3,600 and 43,200 s, no inline policy, and session logs with retention.
func TestTargetRoleTemplate(t *testing.T) {
	tpl, err := cfn.Load(filepath.Join(repo, "infra", "target-role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	roles := tpl.OfType("AWS::IAM::Role")
	if len(roles) != 1 {
		t.Fatalf("want exactly one role, got %v", roles)
	}
	role := tpl.Resources[roles[0]].Properties

	trust := statements(role["AssumeRolePolicyDocument"])
	if len(trust) != 1 {
		t.Fatalf("want one trust statement, got %d", len(trust))
	}
	st := trust[0]
	if st["Effect"] != "Allow" {
		t.Errorf("trust statement effect %v", st["Effect"])
	}
	acts := strs(st["Action"])
	slices.Sort(acts)
	if want := []string{"sts:AssumeRole", "sts:SetSourceIdentity", "sts:TagSession"}; !slices.Equal(acts, want) {
		t.Errorf("trust actions %v, want %v", acts, want)
	}
	principal, _ := st["Principal"].(map[string]any)
	if len(principal) != 1 || fmt.Sprint(principal["AWS"]) != fmt.Sprint(map[string]any{"Ref": "TokkenWorkerRoleArn"}) {
		t.Errorf("trust principal %v, want only {AWS: !Ref TokkenWorkerRoleArn}", principal)
	}
	param, _ := parameters(tpl)["TokkenWorkerRoleArn"].(map[string]any)
	if pattern, _ := param["AllowedPattern"].(string); !strings.Contains(pattern, ":role/") {
		t.Errorf("TokkenWorkerRoleArn must be constrained to a role ARN, pattern %q", pattern)
	}

	grantable := false
	for _, tag := range role["Tags"].([]any) {
		m, _ := tag.(map[string]any)
		grantable = grantable || m["Key"] == "tokken:grantable" && m["Value"] == "true"
	}
	if !grantable {
		t.Error("the role lacks the tag tokken:grantable=true (the worker may assume only tagged roles)")
	}
	if _, ok := role["Policies"]; ok {
		t.Error("the role has inline policies: the worker's tokken-revoked policy would have to merge with them; use ManagedPolicyArns")
	}
	msd, _ := parameters(tpl)["MaxSessionDuration"].(map[string]any)
	if fmt.Sprint(msd["MinValue"]) != "3600" || fmt.Sprint(msd["MaxValue"]) != "43200" || fmt.Sprint(role["MaxSessionDuration"]) != fmt.Sprint(map[string]any{"Ref": "MaxSessionDuration"}) {
		t.Errorf("MaxSessionDuration must be a parameter within IAM's 3,600–43,200 s: %v / %v", msd, role["MaxSessionDuration"])
	}

	// The role carries tokken's permissions boundary, created here (once per
	// account) or referred to by name; the boundary denies identity and
	// policy changes, passing and assuming roles, and is kept on deletion.
	wantBoundary := fmt.Sprint(map[string]any{"Fn::If": []any{"CreateBoundary", map[string]any{"Ref": "GrantBoundary"},
		map[string]any{"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:policy/${GrantBoundaryPolicyName}"}}})
	if got := fmt.Sprint(role["PermissionsBoundary"]); got != wantBoundary {
		t.Errorf("PermissionsBoundary = %s, want %s", got, wantBoundary)
	}
	boundary, ok := tpl.Resources["GrantBoundary"]
	if !ok || boundary.Type != "AWS::IAM::ManagedPolicy" {
		t.Fatal("no GrantBoundary managed policy")
	}
	if raw, _ := tpl.Raw["Resources"].(map[string]any)["GrantBoundary"].(map[string]any); raw["DeletionPolicy"] != "Retain" || raw["Condition"] != "CreateBoundary" {
		t.Errorf("GrantBoundary must be conditional on CreateBoundary and retained on deletion (other roles use it): %v", raw)
	}
	if fmt.Sprint(boundary.Properties["ManagedPolicyName"]) != fmt.Sprint(map[string]any{"Ref": "GrantBoundaryPolicyName"}) {
		t.Errorf("GrantBoundary name %v, want !Ref GrantBoundaryPolicyName", boundary.Properties["ManagedPolicyName"])
	}
	denied := map[string]bool{}
	for _, st := range statements(boundary.Properties["PolicyDocument"]) {
		if st["Effect"] == "Deny" && st["Resource"] == "*" && st["Condition"] == nil {
			for _, a := range strs(st["Action"]) {
				denied[a] = true
			}
		}
	}
	for _, a := range []string{"iam:Put*", "iam:Attach*", "iam:Create*", "iam:Update*", "iam:Delete*", "iam:PassRole", "sts:AssumeRole", "organizations:*"} {
		if !denied[a] {
			t.Errorf("the grant boundary does not deny %s", a)
		}
	}

	docs := tpl.OfType("AWS::SSM::Document")
	if len(docs) != 1 {
		t.Fatalf("want the Session Manager preferences document, got %v", docs)
	}
	doc := tpl.Resources[docs[0]].Properties
	if doc["Name"] != "SSM-SessionManagerRunShell" || doc["DocumentType"] != "Session" {
		t.Errorf("preferences document: name %v type %v", doc["Name"], doc["DocumentType"])
	}
	content, _ := doc["Content"].(map[string]any)
	inputs, _ := content["inputs"].(map[string]any)
	if inputs["cloudWatchLogGroupName"] == nil || inputs["cloudWatchStreamingEnabled"] != true || inputs["idleSessionTimeout"] == nil || inputs["maxSessionDuration"] == nil {
		t.Errorf("preferences must stream session logs and bound idle and total session time: %v", inputs)
	}
	for _, id := range tpl.OfType("AWS::Logs::LogGroup") {
		if tpl.Resources[id].Properties["RetentionInDays"] == nil {
			t.Errorf("log group %s has no retention", id)
		}
	}
}
