package domainui

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/bot/domainjoin"
	"github.com/tokken/tokken/infra/slackapi"
	"github.com/tokken/tokken/testkit/slackfake"
)

const opsChannel = "C0OPS0001"

func newNotifier(t *testing.T, cfg NotifierConfig) (*Notifier, *slackfake.Fake) {
	t.Helper()
	fake := slackfake.New(t)
	fake.AddChannel(opsChannel, "domain-ops")
	fake.AddUser(slackfake.User{ID: "U0ALICE01", Name: "alice"})
	fake.AddUser(slackfake.User{ID: "U0BOB0001", Name: "bob"})
	client := slackapi.New(fake.Token(), slackapi.Options{APIURL: fake.APIURL(), Logger: quiet(), MaxAttempts: 1})
	cfg.Log = quiet()
	n, err := NewNotifier(client, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return n, fake
}

func TestNotifierTracksOneMessageAndItsThread(t *testing.T) {
	ctx := context.Background()
	n, fake := newNotifier(t, NotifierConfig{Channel: opsChannel})
	op := baseOp(domainjoin.StatePendingApproval)
	op.NeedsApproval = true
	ref, err := n.Post(ctx, op)
	if err != nil {
		t.Fatal(err)
	}
	if ref.Channel != opsChannel || ref.TS == "" {
		t.Fatalf("ref = %+v", ref)
	}
	msg, ok := fake.Message(ref.Channel, ref.TS)
	if !ok || len(actionIDs(t, msg.Blocks.BlockSet)) != 3 {
		t.Fatalf("approval card = %+v", msg)
	}

	op.Message = ref
	op.State, op.DecidedBy = domainjoin.StateJoined, "U0BOB0001"
	if err := n.Update(ctx, op); err != nil {
		t.Fatal(err)
	}
	if err := n.Thread(ctx, op, []string{"domain-status: joined", "win-01 (i-0abc123def4567890) is joined."}); err != nil {
		t.Fatal(err)
	}
	msg, _ = fake.Message(ref.Channel, ref.TS)
	if msg.Edits != 1 || len(actionIDs(t, msg.Blocks.BlockSet)) != 0 || !strings.Contains(msg.Text, "joined") {
		t.Errorf("after update: edits %d, text %q, buttons %v", msg.Edits, msg.Text, actionIDs(t, msg.Blocks.BlockSet))
	}
	thread := fake.Thread(ref.Channel, ref.TS)
	if len(thread) != 1 || thread[0].Text != "domain-status: joined\nwin-01 (i-0abc123def4567890) is joined." {
		t.Errorf("thread = %+v", thread)
	}
	if top := fake.Messages(opsChannel); len(top) != 2 { // the card and its one reply
		t.Errorf("channel has %d messages, want the card and one reply", len(top))
	}
}

func TestNotifierWithoutChannelUsesTheRequestersDM(t *testing.T) {
	n, fake := newNotifier(t, NotifierConfig{})
	ref, err := n.Post(context.Background(), baseOp(domainjoin.StateTagging))
	if err != nil {
		t.Fatal(err)
	}
	dm, _ := fake.DMChannel("U0ALICE01")
	if ref.Channel != dm || len(fake.DMs("U0ALICE01")) != 1 {
		t.Fatalf("ref %+v, DM %s, DMs %v", ref, dm, fake.DMs("U0ALICE01"))
	}
}

func TestNotifierReplyFallsBack(t *testing.T) {
	ctx := context.Background()
	t.Run("response_url", func(t *testing.T) {
		n, fake := newNotifier(t, NotifierConfig{Channel: opsChannel})
		url := fake.ResponseURL("R1")
		if err := n.Reply(ctx, domainjoin.ReplyTo{User: "U0ALICE01", Channel: opsChannel, ResponseURL: url}, "No instance is named \"<web>\"."); err != nil {
			t.Fatal(err)
		}
		posts := fake.ResponsePosts("R1")
		if len(posts) != 1 || posts[0].Text != "No instance is named \"&lt;web&gt;\"." {
			t.Fatalf("posts = %+v", posts)
		}
		if len(fake.DMs("U0ALICE01"))+len(fake.Ephemerals("U0ALICE01")) != 0 {
			t.Error("replied twice")
		}
	})
	t.Run("used response_url then ephemeral", func(t *testing.T) {
		n, fake := newNotifier(t, NotifierConfig{Channel: opsChannel})
		url := fake.ResponseURL("R2")
		for range slackfake.ResponseURLLimit {
			if err := n.Reply(ctx, domainjoin.ReplyTo{ResponseURL: url}, "x"); err != nil {
				t.Fatal(err)
			}
		}
		if err := n.Reply(ctx, domainjoin.ReplyTo{User: "U0ALICE01", Channel: opsChannel, ResponseURL: url}, "sixth"); err != nil {
			t.Fatal(err)
		}
		eph := fake.Ephemerals("U0ALICE01")
		if len(eph) != 1 || eph[0].Text != "sixth" || eph[0].Channel != opsChannel {
			t.Fatalf("ephemerals = %+v", eph)
		}
	})
	t.Run("unknown channel then DM", func(t *testing.T) {
		n, fake := newNotifier(t, NotifierConfig{Channel: opsChannel})
		if err := n.Reply(ctx, domainjoin.ReplyTo{User: "U0ALICE01", Channel: "C0GONE0001"}, "done"); err != nil {
			t.Fatal(err)
		}
		if dms := fake.DMs("U0ALICE01"); len(dms) != 1 || dms[0].Text != "done" {
			t.Fatalf("DMs = %+v", dms)
		}
	})
	t.Run("nowhere", func(t *testing.T) {
		n, _ := newNotifier(t, NotifierConfig{Channel: opsChannel})
		if err := n.Reply(ctx, domainjoin.ReplyTo{}, "lost"); err == nil {
			t.Fatal("a reply with no destination must fail")
		}
	})
}

func TestNotifierAlert(t *testing.T) {
	ctx := context.Background()
	op := baseOp(domainjoin.StateTimedOut)
	op.Message = domainjoin.MessageRef{Channel: opsChannel, TS: "1700000000.000100"}
	t.Run("posted where the operation is", func(t *testing.T) {
		n, fake := newNotifier(t, NotifierConfig{Channel: opsChannel})
		if err := n.Alert(ctx, op, "Domain join of win-01 timed out"); err != nil {
			t.Fatal(err)
		}
		msgs := fake.Messages(opsChannel)
		if len(msgs) != 1 || msgs[0].ThreadTS != "" || !strings.Contains(msgs[0].Text, "tokken alert") || !strings.Contains(msgs[0].Text, "timed out") {
			t.Fatalf("messages = %+v", msgs)
		}
	})
	t.Run("through the alert pipeline", func(t *testing.T) {
		var gotCheck, gotOp, gotSummary string
		n, fake := newNotifier(t, NotifierConfig{Channel: opsChannel, Raise: func(_ context.Context, check, opID, summary string) error {
			gotCheck, gotOp, gotSummary = check, opID, summary
			return nil
		}})
		if err := n.Alert(ctx, op, "timed out"); err != nil {
			t.Fatal(err)
		}
		if gotCheck != AlertCheck || gotOp != op.ID || gotSummary != "timed out" || len(fake.Messages(opsChannel)) != 0 {
			t.Fatalf("raised %q %q %q; channel %v", gotCheck, gotOp, gotSummary, fake.Messages(opsChannel))
		}
		failed := op
		failed.State = domainjoin.StateFailed
		if err := n.Alert(ctx, failed, "gave up"); err != nil {
			t.Fatal(err)
		}
		if gotCheck != AlertCheckFailed {
			t.Errorf("a failed operation raised check %q, want %q", gotCheck, AlertCheckFailed)
		}
	})
	t.Run("pipeline failure is returned", func(t *testing.T) {
		n, _ := newNotifier(t, NotifierConfig{Raise: func(context.Context, string, string, string) error { return errors.New("down") }})
		if err := n.Alert(ctx, op, "x"); err == nil {
			t.Fatal("want error")
		}
	})
}

func TestNotifierNeedsAMessageToUpdate(t *testing.T) {
	n, _ := newNotifier(t, NotifierConfig{Channel: opsChannel})
	op := baseOp(domainjoin.StateWaiting)
	if err := n.Update(context.Background(), op); err == nil {
		t.Error("update without a message succeeded")
	}
	if err := n.Thread(context.Background(), op, []string{"x"}); err == nil {
		t.Error("thread without a message succeeded")
	}
}

// TestNotifierPostToAChannelSlackRefuses: a channel the bot is not in
// fails the post at once with a permanent error naming the channel and
// the fix (no retry can help); a rate limit stays retryable.
func TestNotifierPostToAChannelSlackRefuses(t *testing.T) {
	ctx := context.Background()
	n, fake := newNotifier(t, NotifierConfig{Channel: opsChannel})
	fake.SetBotMember(opsChannel, false)
	_, err := n.Post(ctx, baseOp(domainjoin.StatePendingApproval))
	if !bot.IsPermanent(err) || !strings.Contains(err.Error(), opsChannel) || !strings.Contains(err.Error(), "not_in_channel") ||
		!strings.Contains(err.Error(), "/invite @tokken") {
		t.Fatalf("post to a channel without the bot: %v (permanent %v)", err, bot.IsPermanent(err))
	}
	fake.SetBotMember(opsChannel, true)
	fake.FailNext("chat.postMessage", 1, 503)
	if _, err := n.Post(ctx, baseOp(domainjoin.StatePendingApproval)); err == nil || bot.IsPermanent(err) {
		t.Fatalf("a 503 outlasting the retries: %v, want a retryable error", err)
	}
}
