package alertui

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/slack-go/slack"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/bot/alert"
	"github.com/tokken/tokken/handlers/mrkdwn"
	"github.com/tokken/tokken/handlers/router"
	"github.com/tokken/tokken/infra/mackerel"
	"github.com/tokken/tokken/policies"
)

const help = "*/alerts* — what is firing, and quiet time for planned work.\n" +
	"• `/alerts list` — open alerts and active silences\n" +
	"• `/alerts silence <host|role|monitor>:<name> <duration> [reason]` — stop posting alerts it covers, e.g.\n" +
	"   `/alerts silence host:app01 2h deploying v42` · `/alerts silence role:shop:web 30m` · `/alerts silence monitor:\"CPU %\" tomorrow`\n" +
	"   Names may use * and ?; durations like `30m`, `4h`, `1d`, or `tomorrow` (until 09:00 tomorrow); at most 7d.\n" +
	"• `/alerts unsilence <silence-id>` — end a silence early\n" +
	"• `/alerts help` — this help\n" +
	"Silenced alerts are still stored; nothing is lost."

var subcommands = []string{"list", "silence", "unsilence", "help"}

// maxListed bounds /alerts list.
const maxListed = 20

func (u *UI) command(ctx context.Context, cmd slack.SlashCommand) (*slack.Msg, error) {
	args, err := fields(cmd.Text)
	if err != nil {
		return router.Ephemeral(":warning: " + err.Error() + "\n\n" + help), nil
	}
	if len(args) == 0 {
		return router.Ephemeral(help), nil
	}
	sub := strings.ToLower(args[0])
	switch sub {
	case "help":
		return router.Ephemeral(help), nil
	case "list", "ls":
		return u.list(ctx)
	case "silence", "mute":
		return u.silenceCommand(ctx, cmd, args[1:])
	case "unsilence", "unmute":
		return u.unsilenceCommand(ctx, cmd, args[1:])
	}
	msg := fmt.Sprintf(":warning: Unknown subcommand `%s`.", mrkdwn.Escape(mrkdwn.Truncate(args[0], 40)))
	if s := closest(sub, subcommands); s != "" {
		msg += fmt.Sprintf(" Did you mean `%s`?", s)
	}
	return router.Ephemeral(msg + "\n\n" + help), nil
}

func (u *UI) list(ctx context.Context) (*slack.Msg, error) {
	open, err := u.d.Service.OpenAlerts(ctx, 0)
	if err != nil {
		return nil, err
	}
	silences, err := u.d.Service.ActiveSilences(ctx)
	if err != nil {
		return nil, err
	}
	now := u.d.Now()
	l := loc(u.d.View)
	var b strings.Builder
	if len(open) == 0 {
		b.WriteString("*No open alerts.*\n")
	} else {
		fmt.Fprintf(&b, "*Open alerts* (%d)\n", len(open))
	}
	for i, r := range open {
		if i == maxListed {
			fmt.Fprintf(&b, "…and %d more\n", len(open)-maxListed)
			break
		}
		a := r.Alert
		title := mrkdwn.Escape(Title(a))
		if a.URL != "" {
			title = mrkdwn.Link(a.URL, Title(a))
		}
		line := "• " + title
		if !a.OpenedAt.IsZero() {
			line += " · since " + a.OpenedAt.In(l).Format("01/02 15:04")
		}
		if r.AckedBy != "" {
			line += " · acked by " + mrkdwn.Mention(r.AckedBy)
		}
		if r.Silenced(now) {
			line += " · silenced until " + r.SilencedUntil.In(l).Format("01/02 15:04")
		} else if why := r.Suppressed(now); why != "" {
			line += " · not posted (" + mrkdwn.Escape(why) + ")"
		}
		b.WriteString(line + "\n")
	}
	if len(silences) == 0 {
		b.WriteString("*No active silences.*")
	} else {
		fmt.Fprintf(&b, "*Active silences* (%d)\n", len(silences))
		for _, s := range silences {
			line := fmt.Sprintf("• `%s` %s until %s by %s", s.ID, mrkdwn.Escape(s.Scope.String()),
				s.Until.In(l).Format("01/02 15:04 MST"), mrkdwn.Mention(s.By))
			if s.Reason != "" {
				line += " — " + mrkdwn.Escape(mrkdwn.Truncate(s.Reason, 200))
			}
			if s.Downtime != "" {
				line += " (Mackerel downtime " + mrkdwn.Escape(s.Downtime) + ")"
			}
			b.WriteString(line + "\n")
		}
	}
	return router.Ephemeral(strings.TrimRight(b.String(), "\n")), nil
}

const scopeHelp = "Say what to silence: `host:<name>`, `role:<service:role>` or `monitor:<name>` " +
	"(quote names with spaces: `monitor:\"CPU %\"`), e.g. `/alerts silence host:app01 2h deploying`."

const durationHelp = "use e.g. `30m`, `4h`, `1d` or `tomorrow` (until 09:00 tomorrow), at most 7d"

func (u *UI) silenceCommand(ctx context.Context, cmd slack.SlashCommand, args []string) (*slack.Msg, error) {
	var sc alert.Scope
	i := 0
scopes:
	for ; i < len(args); i++ {
		key, val, ok := strings.Cut(args[i], ":")
		if !ok {
			break scopes // the duration: durations have no colon
		}
		val = strings.TrimSpace(val)
		switch strings.ToLower(key) {
		case "host":
			sc.Host = val
		case "role":
			sc.Role = val
		case "monitor":
			sc.Monitor = val
		default:
			msg := fmt.Sprintf(":warning: Unknown scope `%s`.", mrkdwn.Escape(mrkdwn.Truncate(key, 40)))
			if s := closest(strings.ToLower(key), []string{"host", "role", "monitor"}); s != "" {
				msg += fmt.Sprintf(" Did you mean `%s`?", s)
			}
			return router.Ephemeral(msg + " " + scopeHelp), nil
		}
		if val == "" {
			return router.Ephemeral(fmt.Sprintf(":warning: `%s:` needs a name. %s", mrkdwn.Escape(key), scopeHelp)), nil
		}
	}
	if sc.IsZero() {
		return router.Ephemeral(":warning: " + scopeHelp), nil
	}
	if i >= len(args) {
		return router.Ephemeral(":warning: How long? Add a duration after the scope: " + durationHelp + "."), nil
	}
	now := u.d.Now()
	until, err := parseUntil(args[i], now, loc(u.d.View))
	if err != nil {
		return router.Ephemeral(fmt.Sprintf(":warning: `%s` is not a duration: %s.", mrkdwn.Escape(mrkdwn.Truncate(args[i], 40)), durationHelp)), nil
	}
	reason := strings.Join(args[i+1:], " ")
	if ok, why, err := u.authorize(ctx, cmd.UserID, nil, sc); err != nil {
		return nil, err
	} else if !ok {
		return router.Ephemeral(why), nil
	}
	sil, err := u.d.Service.AddSilence(ctx, alert.Silence{Scope: sc, Until: until, By: cmd.UserID, Reason: reason})
	if err != nil {
		return router.Ephemeral(":warning: " + mrkdwn.Escape(err.Error()) + "."), nil
	}
	note := u.downtime(ctx, sil)
	text := fmt.Sprintf(":no_bell: %s silenced %s until %s (`%s`). Alerts it covers are stored, not posted.%s",
		mrkdwn.Mention(cmd.UserID), mrkdwn.Escape(sc.String()), until.In(loc(u.d.View)).Format("01/02 15:04 MST"), sil.ID, note)
	if reason != "" {
		text += "\n> " + mrkdwn.Escape(mrkdwn.Truncate(reason, 300))
	}
	return &slack.Msg{ResponseType: slack.ResponseTypeInChannel, Text: text}, nil
}

func (u *UI) unsilenceCommand(ctx context.Context, cmd slack.SlashCommand, args []string) (*slack.Msg, error) {
	if len(args) != 1 {
		return router.Ephemeral(":warning: Name one silence: `/alerts unsilence <silence-id>`; `/alerts list` shows them."), nil
	}
	id := args[0]
	if ok, why, err := u.authorize(ctx, cmd.UserID, nil, alert.Scope{}); err != nil {
		return nil, err
	} else if !ok {
		return router.Ephemeral(why), nil
	}
	sil, err := u.d.Service.EndSilence(ctx, id, cmd.UserID)
	if errors.Is(err, alert.ErrUnknownSilence) {
		return router.Ephemeral(fmt.Sprintf(":warning: No silence `%s`. `/alerts list` shows the active ones.", mrkdwn.Escape(mrkdwn.Truncate(id, 40)))), nil
	}
	if err != nil {
		return nil, err
	}
	if sil.EndedBy != cmd.UserID {
		return router.Ephemeral(fmt.Sprintf("Silence `%s` had already ended.", sil.ID)), nil
	}
	text := fmt.Sprintf(":bell: %s ended silence `%s` (%s); its alerts are posted again.", mrkdwn.Mention(cmd.UserID), sil.ID, mrkdwn.Escape(sil.Scope.String()))
	text += u.endDowntime(ctx, sil)
	return &slack.Msg{ResponseType: slack.ResponseTypeInChannel, Text: text}, nil
}

// endDowntime deletes the Mackerel downtime a silence created, so that
// Mackerel stops muting when the silence ends early, and returns a note
// for the user ("" when the silence had none).
func (u *UI) endDowntime(ctx context.Context, sil alert.Silence) string {
	if sil.Downtime == "" {
		return ""
	}
	dt := mrkdwn.Escape(sil.Downtime)
	if u.d.Downtimer == nil {
		return " The Mackerel downtime " + dt + " still runs until its end: this tokken has no MACKEREL_API_KEY to delete it; delete it in Mackerel."
	}
	err := u.d.Downtimer.DeleteDowntime(ctx, sil.Downtime)
	switch {
	case err == nil:
		return " Mackerel downtime " + dt + " deleted too."
	case mackerel.IsNotFound(err):
		return " Mackerel downtime " + dt + " was already gone."
	}
	u.d.Log.WarnContext(ctx, "Mackerel downtime not deleted", "silence", sil.ID, "downtime", sil.Downtime, "err", err)
	return " :warning: Mackerel did not delete downtime " + dt + " (" + mrkdwn.Escape(mrkdwn.Truncate(err.Error(), 200)) +
		"), so Mackerel still mutes it until its end; delete it in Mackerel."
}

// authorize asks the policies whether user may act on a (or, for a nil
// a, silence scope sc). A refusal comes with the text to show.
func (u *UI) authorize(ctx context.Context, user string, a *alert.Alert, sc alert.Scope) (bool, string, error) {
	p, err := u.d.Directory.Lookup(ctx, user)
	if err != nil {
		return false, "", err
	}
	c := map[string]string{}
	if a != nil {
		c[policies.CtxAlert] = a.Key
		c[policies.CtxMonitor] = a.Monitor
		c[policies.CtxHost] = a.Target()
		c[policies.CtxService] = a.Service
		c[policies.CtxEnv] = a.Environment
		if a.Host != nil && len(a.Host.Roles) > 0 {
			r := a.Host.Roles[0]
			c[policies.CtxRole] = r.Service + ":" + r.Role
			if c[policies.CtxService] == "" {
				c[policies.CtxService] = r.Service
			}
		}
	} else {
		c[policies.CtxAlert] = "silence"
		c[policies.CtxHost], c[policies.CtxRole], c[policies.CtxMonitor] = sc.Host, sc.Role, sc.Monitor
	}
	for k, v := range c {
		if v == "" {
			delete(c, k)
		}
	}
	d, err := u.d.Authorizer.Authorize(ctx, bot.AuthzQuery{Principal: p, Action: bot.ActionAlertAct, Now: u.d.Now(), Context: c})
	if err != nil {
		return false, "", fmt.Errorf("authorize %s: %w", user, err)
	}
	if d.Allow {
		return true, "", nil
	}
	why := ":no_entry: You may not act on alerts here; nothing was changed."
	if len(d.Reasons) > 0 {
		why += " (" + mrkdwn.Escape(strings.Join(d.Reasons, "; ")) + ")"
	}
	return false, why, nil
}

// downtime creates the Mackerel downtime matching sil when Mackerel can
// express its scope exactly (one role, or one monitor by exact name) and
// returns a note for the user ("" when there is nothing to say).
func (u *UI) downtime(ctx context.Context, sil alert.Silence) string {
	if u.d.Downtimer == nil {
		return ""
	}
	sc := sil.Scope
	exact := func(s string) bool { return s != "" && !strings.ContainsAny(s, "*?") }
	d := mackerel.NewDowntime("tokken "+sil.ID, fmt.Sprintf("Silenced from Slack by %s: %s", sil.By, sil.Reason), u.d.Now(), sil.Until)
	switch {
	case sc.Host == "" && sc.Monitor == "" && exact(sc.Role) && strings.Contains(sc.Role, ":"):
		svc, role, _ := strings.Cut(sc.Role, ":")
		d.RoleScopes = []string{strings.TrimSpace(svc) + ": " + strings.TrimSpace(role)}
	case sc.Host == "" && sc.Role == "" && exact(sc.Monitor):
		id, err := u.d.Downtimer.MonitorID(ctx, sc.Monitor)
		if err != nil {
			u.d.Log.WarnContext(ctx, "no Mackerel downtime for silence", "silence", sil.ID, "err", err)
			return " (No Mackerel downtime: Mackerel has no monitor with that exact name.)"
		}
		d.MonitorScopes = []string{id}
	default:
		return " (Mackerel downtimes cannot target one host or a pattern, so only tokken is silenced.)"
	}
	id, err := u.d.Downtimer.CreateDowntime(ctx, d)
	if err == nil {
		err = u.d.Service.SetDowntime(ctx, sil.ID, id)
	}
	if err != nil {
		u.d.Log.WarnContext(ctx, "Mackerel downtime failed", "silence", sil.ID, "err", err)
		return " (The Mackerel downtime could not be created; tokken's silence holds.)"
	}
	return " Mackerel downtime " + mrkdwn.Escape(id) + " created too."
}

// parseUntil reads a silence length: a Go duration ("90m", "4h"), days
// ("1d", "2d"), or "tomorrow" (09:00 tomorrow in loc). It must lie between
// a minute and alert.MaxSilence ahead.
func parseUntil(s string, now time.Time, loc *time.Location) (time.Time, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	var until time.Time
	switch {
	case s == "tomorrow":
		until = alert.TomorrowAt(now, 9, loc)
	case strings.HasSuffix(s, "d") && !strings.ContainsAny(strings.TrimSuffix(s, "d"), "hms"):
		var n int
		if _, err := fmt.Sscanf(s, "%dd", &n); err != nil || fmt.Sprintf("%dd", n) != s {
			return time.Time{}, fmt.Errorf("bad days %q", s)
		}
		until = now.Add(time.Duration(n) * 24 * time.Hour)
	default:
		d, err := time.ParseDuration(s)
		if err != nil {
			return time.Time{}, err
		}
		until = now.Add(d)
	}
	if d := until.Sub(now); d < time.Minute || d > alert.MaxSilence {
		return time.Time{}, fmt.Errorf("%s is outside 1m..7d", d)
	}
	return until, nil
}

// fields splits a command line at spaces; double quotes (also Slack's
// curly quotes) group words and are removed.
func fields(s string) ([]string, error) {
	var out []string
	var cur strings.Builder
	quoted, has := false, false
	for _, r := range s {
		switch {
		case r == '"' || r == '“' || r == '”':
			quoted, has = !quoted, true
		case unicode.IsSpace(r) && !quoted:
			if has {
				out = append(out, cur.String())
				cur.Reset()
				has = false
			}
		default:
			cur.WriteRune(r)
			has = true
		}
	}
	if quoted {
		return nil, errors.New("a quote is not closed")
	}
	if has {
		out = append(out, cur.String())
	}
	return out, nil
}

// closest returns the candidate within edit distance 2 of s, if any.
func closest(s string, candidates []string) string {
	best, bestD := "", 3
	for _, c := range candidates {
		if d := distance(s, c); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// distance is the Levenshtein distance between a and b (bytes; inputs are
// short ASCII keywords).
func distance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
