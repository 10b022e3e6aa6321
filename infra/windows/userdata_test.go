package windows

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// PowerShell cannot run here, so these tests read the script as text: its
// encoding and wrapper, its defaults against the Go constants, the tag keys
// it writes against the ones the bot reads, the order of its steps, the
// balance of its brackets, and the absence of anything credential-like.

func scriptLines(t *testing.T) []string {
	t.Helper()
	return strings.Split(userDataFile, "\n")
}

func TestScriptIsASCIIAndWrappedToPersist(t *testing.T) {
	for i, l := range scriptLines(t) {
		for j := 0; j < len(l); j++ {
			if c := l[j]; c >= 0x80 || (c < 0x20 && c != '\t' && c != '\r') {
				t.Fatalf("line %d col %d: byte %#x is not printable ASCII (non-ASCII breaks after base64)", i+1, j+1, c)
			}
		}
	}
	s := strings.TrimSpace(userDataFile)
	if !strings.HasPrefix(s, "<powershell>") {
		t.Errorf("user data must start with <powershell>")
	}
	end := strings.Index(s, "</powershell>")
	persist := strings.Index(s, "<persist>true</persist>")
	if end < 0 || persist < end || !strings.HasSuffix(s, "<persist>true</persist>") {
		t.Errorf("user data must end with </powershell> then <persist>true</persist> (runs on every boot)")
	}
	if strings.Count(s, "<powershell>") != 1 || strings.Count(s, "</powershell>") != 1 {
		t.Errorf("exactly one <powershell> block expected")
	}
}

func TestScriptDefaultsAreTheGoConstants(t *testing.T) {
	_, _, vals, err := configBlock(scriptLines(t))
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultConfig().scriptVars()
	if !maps.Equal(vals, want) {
		t.Errorf("script config block = %v\nGo defaults         = %v", vals, want)
	}
	got, err := UserData(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	if got != userDataFile {
		t.Errorf("UserData(DefaultConfig()) differs from the shipped userdata.ps1")
	}
	if vals["SecretId"] != "" {
		t.Errorf("the shipped script must not name a secret; it reads tag %s", TagSecret)
	}
}

// setTagsCall matches a call of the script's one tag-writing function.
var setTagsCall = regexp.MustCompile(`(?:^|[;{(\s])Set-Tags\s+@\{([^}]*)\}`)

// writtenKeys returns, for each Set-Tags call, the config variables used as
// keys; literal keys are reported as errors.
func writtenKeys(t *testing.T, lines []string) map[string]bool {
	t.Helper()
	keys := map[string]bool{}
	calls := 0
	for i, l := range lines {
		code := stripComment(l)
		if strings.Contains(code, "Set-Tags") && !strings.Contains(code, "function Set-Tags") && !setTagsCall.MatchString(code) {
			t.Errorf("line %d: Set-Tags must be called with an inline @{...} on one line: %q", i+1, l)
		}
		for _, m := range setTagsCall.FindAllStringSubmatch(code, -1) {
			calls++
			for _, pair := range strings.Split(m[1], ";") {
				k, _, ok := strings.Cut(pair, "=")
				if !ok {
					t.Errorf("line %d: malformed pair %q", i+1, pair)
					continue
				}
				k = strings.TrimSpace(k)
				if !strings.HasPrefix(k, "$") || !strings.HasSuffix(k, "TagKey") {
					t.Errorf("line %d: tag key %s must be a configured $...TagKey variable", i+1, k)
					continue
				}
				keys[strings.TrimPrefix(k, "$")] = true
			}
		}
	}
	if calls == 0 {
		t.Fatal("no Set-Tags calls found: the parser is out of date with the script")
	}
	return keys
}

func TestScriptWritesOnlyKeysTheBotReads(t *testing.T) {
	lines := scriptLines(t)
	vars := DefaultConfig().scriptVars()
	scheme := DefaultScheme()
	written := writtenKeys(t, lines)
	var writtenTags []string
	for v := range written {
		tag, ok := vars[v]
		if !ok {
			t.Errorf("$%s is not a config variable", v)
			continue
		}
		writtenTags = append(writtenTags, tag)
		if !slices.Contains(scheme.ReadKeys(), tag) {
			t.Errorf("script writes tag %q which the bot does not read (reads %v)", tag, scheme.ReadKeys())
		}
		if !slices.Contains(scheme.ScriptKeys(), tag) {
			t.Errorf("script writes tag %q which its IAM policy does not allow (%v)", tag, scheme.ScriptKeys())
		}
	}
	for _, k := range scheme.ScriptKeys() {
		if !slices.Contains(writtenTags, k) {
			t.Errorf("the bot expects the script to write %q, but it never does", k)
		}
	}
	// One writer: New-EC2Tag only inside Set-Tags, no other tag API.
	if n := strings.Count(userDataFile, "New-EC2Tag"); n != 1 {
		t.Errorf("New-EC2Tag appears %d times; only Set-Tags may call it", n)
	}
	for _, api := range []string{"Remove-EC2Tag", "Edit-EC2InstanceAttribute", "Restart-EC2Instance"} {
		if strings.Contains(userDataFile, api) {
			t.Errorf("script calls %s, which its policy does not grant", api)
		}
	}
}

func TestScriptStepsInOrder(t *testing.T) {
	body := userDataFile[strings.Index(userDataFile, "Start-Transcript"):]
	order := []string{
		"Sync-Clock",                           // UTC and time sync first
		"X-aws-ec2-metadata-token-ttl-seconds", // IMDSv2 token
		"Get-Imds 'meta-data/instance-id'",
		"Get-InstanceTags",
		"Invoke-DomainChange",
		"Stop-Transcript",
	}
	at := -1
	for _, step := range order {
		i := strings.Index(body, step)
		if i < 0 {
			t.Fatalf("main body lacks %q", step)
		}
		if i < at {
			t.Errorf("%q comes before the step preceding it", step)
		}
		at = i
	}
	for _, must := range []string{
		"tzutil.exe /s 'UTC'", "w32tm.exe /resync",
		"meta-data/tags/instance", "Get-EC2Tag", // IMDS tags, DescribeTags fallback
		"Get-SECSecretValue", "Add-Computer", "Remove-Computer", "PartOfDomain",
		"$MaxReboots", "$MarkerPath", "shutdown.exe /r",
		"$ProgressTagKey = 'rebooting'", "$ProgressTagKey = 'joining'", "$ProgressTagKey = 'leaving'",
	} {
		if !strings.Contains(userDataFile, must) {
			t.Errorf("script lacks %q", must)
		}
	}
	if strings.Index(userDataFile, "Sync-Clock") > strings.Index(userDataFile, "function Get-Imds") {
		t.Errorf("Sync-Clock must be defined first, as it runs first")
	}
}

func TestScriptBracketsBalance(t *testing.T) {
	if err := balanced(userDataFile); err != nil {
		t.Fatal(err)
	}
	// The checker itself must catch what it is for.
	for _, bad := range []string{"if ($a) { b", "foo)", "'unterminated", `"x $(y"`, "@{ a = 1 ]"} {
		if balanced("<powershell>\n"+bad+"\n</powershell>") == nil {
			t.Errorf("balanced(%q) = nil, want an error", bad)
		}
	}
}

func TestScriptHasNoSecrets(t *testing.T) {
	bad := []struct{ name, re string }{
		{"AWS access key id", `\b(?:AKIA|ASIA)[0-9A-Z]{16}\b`},
		{"private key", `-----BEGIN`},
		{"literal password", `(?i)password\s*=\s*['"]`},
		{"literal secure string", `(?i)ConvertTo-SecureString\s+(?:-String\s+)?['"]`},
		{"literal credential argument", `(?i)-(?:Password|Credential|UnjoinDomainCredential)\s+['"]`},
		{"secret ARN", `arn:aws[a-z-]*:secretsmanager:`},
		{"long opaque token", `[A-Za-z0-9+/]{40,}`},
		{"password in output", `(?i)Write-(?:Log|Output|Host)[^\n]*password`},
	}
	for _, b := range bad {
		if loc := regexp.MustCompile(b.re).FindStringIndex(userDataFile); loc != nil {
			t.Errorf("%s in user data: %q", b.name, userDataFile[loc[0]:loc[1]])
		}
	}
	// The detector must see a planted credential.
	planted := strings.Replace(userDataFile, "$SecretId       = ''", "$Password = 'hunter2'", 1)
	if !regexp.MustCompile(bad[2].re).MatchString(planted) {
		t.Errorf("literal-password check does not fire on a planted password")
	}
}

// stripComment removes a # comment outside quotes from a line.
func stripComment(l string) string {
	var q byte
	for i := 0; i < len(l); i++ {
		c := l[i]
		switch {
		case q != 0 && c == q:
			q = 0
		case q == 0 && (c == '\'' || c == '"'):
			q = c
		case q == 0 && c == '#':
			return l[:i]
		}
	}
	return l
}

// balanced checks (), {} and [] nest correctly outside strings and
// comments, that strings close, and that $( ) inside double quotes closes.
// It is not a PowerShell parser; it catches the edits that break a script.
func balanced(script string) error {
	start := strings.Index(script, "<powershell>")
	end := strings.Index(script, "</powershell>")
	if start < 0 || end < start {
		return errorf(0, "no <powershell> block")
	}
	src := script[start+len("<powershell>") : end]
	var stack []byte
	line := 1
	pairs := map[byte]byte{')': '(', '}': '{', ']': '['}
	for i := 0; i < len(src); i++ {
		c := src[i]
		switch c {
		case '\n':
			line++
		case '#':
			for i < len(src) && src[i] != '\n' {
				i++
			}
			line++
		case '\'':
			j := i + 1
			for ; j < len(src); j++ {
				if src[j] == '\'' {
					if j+1 < len(src) && src[j+1] == '\'' {
						j++
						continue
					}
					break
				}
			}
			if j >= len(src) {
				return errorf(line, "unterminated single-quoted string")
			}
			line += strings.Count(src[i:j], "\n")
			i = j
		case '"':
			j, depth := i+1, 0
			for ; j < len(src); j++ {
				switch {
				case src[j] == '`':
					j++
				case src[j] == '$' && j+1 < len(src) && src[j+1] == '(':
					depth++
					j++
				case src[j] == ')' && depth > 0:
					depth--
				case src[j] == '"' && depth == 0:
					goto closed
				}
			}
			return errorf(line, "unterminated double-quoted string")
		closed:
			line += strings.Count(src[i:j], "\n")
			i = j
		case '(', '{', '[':
			stack = append(stack, c)
		case ')', '}', ']':
			if len(stack) == 0 || stack[len(stack)-1] != pairs[c] {
				return errorf(line, "unbalanced %q", c)
			}
			stack = stack[:len(stack)-1]
		}
	}
	if len(stack) > 0 {
		return errorf(line, "%d unclosed bracket(s), innermost %q", len(stack), stack[len(stack)-1])
	}
	return nil
}

func errorf(line int, format string, args ...any) error {
	return fmt.Errorf("userdata.ps1 script line %d: %s", line, fmt.Sprintf(format, args...))
}

func TestUserDataRendersConfig(t *testing.T) {
	custom := DefaultConfig()
	custom.Tags.Control, custom.Tags.Join, custom.Tags.Status = "ad", "member", "ad-status"
	custom.SecretID = "arn:aws:secretsmanager:us-east-1:123456789012:secret:ad-join-AbCdEf"
	custom.MaxReboots = 3

	dup := DefaultConfig()
	dup.Tags.Reason = dup.Tags.Status
	quote := DefaultConfig()
	quote.Tags.Joined = "it's"
	space := DefaultConfig()
	space.Tags.Control = "my domain"
	secretClash := DefaultConfig()
	secretClash.SecretTag = TagStatus
	badSecret := DefaultConfig()
	badSecret.SecretID = "x'; Remove-Item C:\\ -Recurse; '"
	zero := DefaultConfig()
	zero.MaxReboots = 0
	sameValue := DefaultConfig()
	sameValue.Tags.Unjoin = sameValue.Tags.Join

	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"custom", custom, ""},
		{"duplicate keys", dup, "both"},
		{"quote in value", quote, "joined value"},
		{"space in key", space, "control key"},
		{"secret tag clashes", secretClash, "also a domain tag key"},
		{"injection in secret id", badSecret, "secret id"},
		{"no reboots", zero, "max reboots"},
		{"join equals unjoin", sameValue, "both"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := UserData(tc.cfg)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			_, _, vals, err := configBlock(strings.Split(got, "\n"))
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(vals, tc.cfg.scriptVars()) {
				t.Errorf("rendered config = %v, want %v", vals, tc.cfg.scriptVars())
			}
			if err := balanced(got); err != nil {
				t.Error(err)
			}
			// Outside the config block nothing changes.
			strip := func(s string) string {
				lines := strings.Split(s, "\n")
				from, to, _, _ := configBlock(lines)
				return strings.Join(append(lines[:from:from], lines[to:]...), "\n")
			}
			if strip(got) != strip(userDataFile) {
				t.Errorf("rendering changed lines outside the config block")
			}
		})
	}
}
