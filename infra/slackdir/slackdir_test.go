package slackdir

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tokken/tokken/bot/access"
	"github.com/tokken/tokken/infra/slackapi"
	"github.com/tokken/tokken/testkit/slackfake"
)

func TestDirectory(t *testing.T) {
	fake := slackfake.New(t)
	fake.AddUser(slackfake.User{ID: "U0ALICE001", Email: "alice@example.com"})
	fake.AddUser(slackfake.User{ID: "U0GONE0001", Deleted: true})
	fake.AddUser(slackfake.User{ID: "B0BOT00001", IsBot: true})
	fake.AddUserGroup("S0SRE00001", "U0ALICE001")
	fake.AddUserGroup("S0ONCALL01", "U0BOB00001")
	client := slackapi.New(fake.Token(), slackapi.Options{APIURL: fake.APIURL(), MaxAttempts: 1})
	groupCalls := func() int { return len(fake.Calls("usergroups.users.list")) }

	d := New(client, []string{"S0SRE00001", "S0ONCALL01"}, nil)
	now := time.Date(2026, 3, 3, 10, 0, 0, 0, time.UTC)
	d.now = func() time.Time { return now }
	ctx := context.Background()
	p, err := d.Lookup(ctx, "U0ALICE001")
	if err != nil || p.Email != "alice@example.com" || !slices.Equal(p.SlackGroups, []string{"S0SRE00001"}) {
		t.Fatalf("Lookup = %+v, %v", p, err)
	}
	if _, err := d.Lookup(ctx, "U0ALICE001"); err != nil || groupCalls() != 2 {
		t.Fatalf("second lookup within the TTL listed groups again: %d calls, %v", groupCalls(), err)
	}
	now = now.Add(GroupTTL)
	if _, err := d.Lookup(ctx, "U0ALICE001"); err != nil || groupCalls() != 4 {
		t.Fatalf("after the TTL: %d calls, %v", groupCalls(), err)
	}
	for _, id := range []string{"U0GONE0001", "B0BOT00001", "U0NOBODY01"} {
		if _, err := d.Lookup(ctx, id); !errors.Is(err, access.ErrUnknownUser) {
			t.Errorf("Lookup(%s) = %v, want access.ErrUnknownUser", id, err)
		}
	}

	// A user of another team (Slack Connect) or a stranger whose e-mail
	// matches a member's gets no e-mail: groups.yaml addresses never make
	// them a member.
	d.Team = client.Team
	fake.AddUser(slackfake.User{ID: "U0EXT00001", Email: "alice@example.com", TeamID: "T0OTHER001"})
	fake.AddUser(slackfake.User{ID: "U0STRANGE1", Email: "alice@example.com", Stranger: true})
	fake.AddUser(slackfake.User{ID: "U0HOME0001", Email: "carol@example.com"})
	for id, want := range map[string]string{"U0EXT00001": "", "U0STRANGE1": "", "U0HOME0001": "carol@example.com"} {
		if p, err := d.Lookup(ctx, id); err != nil || p.Email != want {
			t.Errorf("Lookup(%s) = %+v, %v; want e-mail %q", id, p, err, want)
		}
	}

	// While the installation's team cannot be learnt, nobody's e-mail
	// counts: membership can only be lost by it.
	d.Team = func(context.Context) (string, error) { return "", errors.New("auth.test: invalid_auth") }
	if p, err := d.Lookup(ctx, "U0HOME0001"); err != nil || p.Email != "" {
		t.Errorf("team unknown: Lookup = %+v, %v; want no e-mail", p, err)
	}

	// Groups that cannot be listed only take permissions away.
	fake.FailNext("usergroups.users.list", 2, 500)
	now = now.Add(GroupTTL)
	if p, err := d.Lookup(ctx, "U0ALICE001"); err != nil || len(p.SlackGroups) != 0 {
		t.Fatalf("with groups unavailable: %+v %v", p, err)
	}
}

// A group Slack refuses to list (deleted or mistyped in groups.yaml) is
// asked about once per GroupTTL, not on every lookup; a failure without
// Slack's answer (the network, a 5xx) is asked again at the next lookup.
func TestDirectoryCachesGroupRefusal(t *testing.T) {
	fake := slackfake.New(t)
	fake.AddUser(slackfake.User{ID: "U0ALICE001", Name: "alice", Email: "alice@example.com"})
	fake.AddUserGroup("S0SRE00001", "U0ALICE001")
	client := slackapi.New(fake.Token(), slackapi.Options{APIURL: fake.APIURL(), Logger: slog.New(slog.DiscardHandler), MaxAttempts: 1})
	d := New(client, []string{"S0SRE00001", "S0GONE0001"}, slog.New(slog.DiscardHandler))
	now := time.Date(2026, 3, 3, 10, 0, 0, 0, time.UTC)
	d.now = func() time.Time { return now }
	ctx := context.Background()
	listed := func() int { return len(fake.Calls("usergroups.users.list")) }

	for range 3 {
		p, err := d.Lookup(ctx, "U0ALICE001")
		if err != nil || !slices.Equal(p.SlackGroups, []string{"S0SRE00001"}) {
			t.Fatalf("Lookup = %+v, %v", p, err)
		}
	}
	if n := listed(); n != 2 {
		t.Fatalf("3 lookups within the TTL listed groups %d times, want 2 (each group once)", n)
	}

	// Both lists are asked at once, in no set order: fail both.
	now = now.Add(GroupTTL)
	fake.FailNext("usergroups.users.list", 2, http.StatusServiceUnavailable)
	if p, err := d.Lookup(ctx, "U0ALICE001"); err != nil || len(p.SlackGroups) != 0 {
		t.Fatalf("with the group lists failing: %+v, %v", p, err)
	}
	if p, err := d.Lookup(ctx, "U0ALICE001"); err != nil || !slices.Equal(p.SlackGroups, []string{"S0SRE00001"}) {
		t.Fatalf("after a failure without Slack's answer, the group is asked again: %+v, %v", p, err)
	}
	if n := listed(); n != 6 {
		t.Fatalf("after the TTL: %d usergroups.users.list calls, want 6 (both groups failing with 503, then both asked again)", n)
	}
}

// Cached answers from a users.info answer younger than UserTTL; Lookup
// asks Slack every time, so a user deactivated in Slack is refused by it
// at once, and by Cached once its answer is older than UserTTL. Answers of
// users not seen for UserTTL are dropped.
func TestDirectoryCached(t *testing.T) {
	fake := slackfake.New(t)
	fake.AddUser(slackfake.User{ID: "U0ALICE001", Email: "alice@example.com"})
	fake.AddUser(slackfake.User{ID: "U0BOB00001", Email: "bob@example.com"})
	fake.AddUserGroup("S0SRE00001", "U0ALICE001")
	client := slackapi.New(fake.Token(), slackapi.Options{APIURL: fake.APIURL(), Logger: slog.New(slog.DiscardHandler), MaxAttempts: 1})
	d := New(client, []string{"S0SRE00001"}, slog.New(slog.DiscardHandler))
	now := time.Date(2026, 3, 3, 10, 0, 0, 0, time.UTC)
	d.now = func() time.Time { return now }
	ctx := context.Background()
	asked := func() int { return len(fake.Calls("users.info")) }
	c := d.Cached()

	for range 3 {
		p, err := c.Lookup(ctx, "U0ALICE001")
		if err != nil || p.Email != "alice@example.com" || !slices.Equal(p.SlackGroups, []string{"S0SRE00001"}) {
			t.Fatalf("Cached().Lookup = %+v, %v", p, err)
		}
	}
	if n := asked(); n != 1 {
		t.Fatalf("3 cached lookups within UserTTL: %d users.info calls, want 1", n)
	}
	if _, err := d.Lookup(ctx, "U0ALICE001"); err != nil || asked() != 2 {
		t.Fatalf("Lookup answered from the cache: %d users.info calls, %v", asked(), err)
	}

	fake.DeactivateUser("U0ALICE001")
	if _, err := d.Lookup(ctx, "U0ALICE001"); !errors.Is(err, access.ErrUnknownUser) {
		t.Fatalf("Lookup of a user just deactivated = %v, want access.ErrUnknownUser", err)
	}
	// The deactivation is an answer too: Cached refuses from then on.
	if _, err := c.Lookup(ctx, "U0ALICE001"); !errors.Is(err, access.ErrUnknownUser) {
		t.Fatalf("Cached().Lookup after Lookup saw the deactivation = %v, want access.ErrUnknownUser", err)
	}

	// Without a fresh Lookup, Cached sees a deactivation once its answer
	// is UserTTL old.
	if _, err := c.Lookup(ctx, "U0BOB00001"); err != nil {
		t.Fatal(err)
	}
	fake.DeactivateUser("U0BOB00001")
	now = now.Add(UserTTL - time.Second)
	if _, err := c.Lookup(ctx, "U0BOB00001"); err != nil {
		t.Fatalf("Cached().Lookup within UserTTL = %v, want the cached answer", err)
	}
	now = now.Add(time.Second)
	if _, err := c.Lookup(ctx, "U0BOB00001"); !errors.Is(err, access.ErrUnknownUser) {
		t.Fatalf("Cached().Lookup after UserTTL = %v, want access.ErrUnknownUser", err)
	}

	// Users not seen for UserTTL are dropped at the next answer.
	now = now.Add(UserTTL)
	fake.AddUser(slackfake.User{ID: "U0CAROL001", Email: "carol@example.com"})
	if _, err := c.Lookup(ctx, "U0CAROL001"); err != nil {
		t.Fatal(err)
	}
	d.mu.Lock()
	kept := slices.Sorted(maps.Keys(d.users))
	d.mu.Unlock()
	if !slices.Equal(kept, []string{"U0CAROL001"}) {
		t.Errorf("users kept after UserTTL: %v, want only U0CAROL001", kept)
	}
}

// A lookup asks users.info, the member lists it has not cached and, while
// the installation's team is unknown, auth.test all at once: Slack holds
// each call until every one the case expects has arrived, so calls made
// one after another never get an answer in time and the test fails. The
// principal is the one sequential asking gave: groups in the policies'
// order, e-mail cleared for external users, errors wrapping
// access.ErrUnknownUser.
func TestDirectoryAsksConcurrently(t *testing.T) {
	const (
		sre    = "S0SRE00001"
		oncall = "S0ONCALL01"
		dev    = "S0DEV00001"
		gone   = "S0GONE0001"
		alice  = "U0ALICE001"
	)
	tests := []struct {
		name        string
		groups      []string
		user        string
		cached      bool // Cached().Lookup instead of Lookup
		teamUnknown bool // auth.test not answered yet
		warm        func(t *testing.T, d *Directory)
		wantCalls   map[string]int // calls of the lookup under test
		wantEmail   string
		wantGroups  []string
		wantErr     error
	}{{
		name:      "no group",
		user:      alice,
		wantCalls: map[string]int{"users.info": 1},
		wantEmail: "alice@example.com",
	}, {
		name:       "one group",
		groups:     []string{sre},
		user:       alice,
		wantCalls:  map[string]int{"users.info": 1, "usergroups.users.list": 1},
		wantEmail:  "alice@example.com",
		wantGroups: []string{sre},
	}, {
		name:       "four groups, one refused: the policies' order",
		groups:     []string{oncall, gone, dev, sre},
		user:       alice,
		wantCalls:  map[string]int{"users.info": 1, "usergroups.users.list": 4},
		wantEmail:  "alice@example.com",
		wantGroups: []string{oncall, sre},
	}, {
		name:        "the installation's team asked alongside",
		groups:      []string{sre, oncall},
		user:        alice,
		teamUnknown: true,
		wantCalls:   map[string]int{"users.info": 1, "usergroups.users.list": 2, "auth.test": 1},
		wantEmail:   "alice@example.com",
		wantGroups:  []string{sre, oncall},
	}, {
		name:        "an external user while the team is asked",
		groups:      []string{sre, oncall},
		user:        "U0EXT00001",
		teamUnknown: true,
		wantCalls:   map[string]int{"users.info": 1, "usergroups.users.list": 2, "auth.test": 1},
		wantGroups:  []string{oncall},
	}, {
		name:   "only the list not cached",
		groups: []string{sre, oncall, dev},
		user:   alice,
		warm: func(_ *testing.T, d *Directory) {
			d.cache[sre] = groupMembers{members: []string{alice}, at: d.now()}
			d.cache[dev] = groupMembers{err: errors.New("slack usergroups.users.list: no_such_subteam"), at: d.now()}
		},
		wantCalls:  map[string]int{"users.info": 1, "usergroups.users.list": 1},
		wantEmail:  "alice@example.com",
		wantGroups: []string{sre, oncall},
	}, {
		name:   "lists cached: users.info only",
		groups: []string{sre, oncall},
		user:   alice,
		warm: func(t *testing.T, d *Directory) {
			if _, err := d.Lookup(t.Context(), alice); err != nil {
				t.Fatal(err)
			}
		},
		wantCalls:  map[string]int{"users.info": 1},
		wantEmail:  "alice@example.com",
		wantGroups: []string{sre, oncall},
	}, {
		name:   "Cached, everything cached: no call",
		groups: []string{sre, oncall},
		user:   alice,
		cached: true,
		warm: func(t *testing.T, d *Directory) {
			if _, err := d.Cached().Lookup(t.Context(), alice); err != nil {
				t.Fatal(err)
			}
		},
		wantCalls:  map[string]int{},
		wantEmail:  "alice@example.com",
		wantGroups: []string{sre, oncall},
	}, {
		name:      "an unknown user: the lists are asked and cached all the same",
		groups:    []string{sre, oncall},
		user:      "U0NOBODY01",
		wantCalls: map[string]int{"users.info": 1, "usergroups.users.list": 2},
		wantErr:   access.ErrUnknownUser,
	}, {
		name:      "a deactivated user",
		groups:    []string{sre, oncall},
		user:      "U0GONE0001",
		wantCalls: map[string]int{"users.info": 1, "usergroups.users.list": 2},
		wantErr:   access.ErrUnknownUser,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := slackfake.New(t)
			fake.AddUser(slackfake.User{ID: alice, Email: "alice@example.com"})
			fake.AddUser(slackfake.User{ID: "U0EXT00001", Email: "alice@example.com", TeamID: "T0OTHER001"})
			fake.AddUser(slackfake.User{ID: "U0GONE0001", Deleted: true})
			fake.AddUserGroup(sre, alice)
			fake.AddUserGroup(oncall, "U0EXT00001", alice)
			fake.AddUserGroup(dev, "U0BOB00001")
			client := slackapi.New(fake.Token(), slackapi.Options{APIURL: fake.APIURL(), Logger: slog.New(slog.DiscardHandler), MaxAttempts: 1})
			ctx := t.Context()
			d := New(client, tt.groups, slog.New(slog.DiscardHandler))
			d.Team = client.Team
			if !tt.teamUnknown {
				if _, err := client.Team(ctx); err != nil {
					t.Fatal(err)
				}
			}
			if tt.warm != nil {
				tt.warm(t, d)
			}
			made := len(fake.Calls(""))

			n := 0
			for _, k := range tt.wantCalls {
				n += k
			}
			b := newBarrier(n, 5*time.Second)
			fake.BeforeAnswer(b.hold)
			lookup := d.Lookup
			if tt.cached {
				lookup = d.Cached().Lookup
			}
			p, err := lookup(ctx, tt.user)
			fake.BeforeAnswer(nil)
			if arrived, ok := b.result(); !ok {
				t.Errorf("after %s, %d of the %d calls had arrived: the lookup made them one after another\n%s", b.timeout, arrived, n, fake.Dump(10))
			}

			calls := map[string]int{} // made by the lookup under test
			for _, c := range fake.Calls("")[made:] {
				calls[c.Method]++
			}
			if !maps.Equal(calls, tt.wantCalls) {
				t.Errorf("calls = %v, want %v", calls, tt.wantCalls)
			}
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Lookup(%s) = %+v, %v; want %v", tt.user, p, err, tt.wantErr)
				}
			} else if err != nil || p.ID != tt.user || p.Email != tt.wantEmail || !slices.Equal(p.SlackGroups, tt.wantGroups) {
				t.Fatalf("Lookup(%s) = %+v, %v; want e-mail %q, groups %v", tt.user, p, err, tt.wantEmail, tt.wantGroups)
			}

			// Whatever the user's answer, the lists asked are cached: the
			// next lookup within GroupTTL asks none.
			listed := len(fake.Calls("usergroups.users.list"))
			if _, err := d.Lookup(ctx, alice); err != nil {
				t.Fatal(err)
			}
			if again := len(fake.Calls("usergroups.users.list")) - listed; again != 0 {
				t.Errorf("the next lookup listed %d groups again, want 0 (cached)", again)
			}
		})
	}
}

// barrier holds each call it sees until n have arrived, then lets them all
// go. Calls made one after another never all arrive: the first waits out
// the timeout, after which the barrier lets every call through and result
// reports the failure.
type barrier struct {
	n       int
	timeout time.Duration
	open    chan struct{}
	once    sync.Once

	mu      sync.Mutex
	arrived int  // calls seen
	gaveUp  int  // calls seen when the timeout passed; 0 while it has not
	broken  bool // the timeout passed before n calls arrived
}

func newBarrier(n int, timeout time.Duration) *barrier {
	b := &barrier{n: n, timeout: timeout, open: make(chan struct{})}
	if n <= 1 {
		b.once.Do(func() { close(b.open) })
	}
	return b
}

// hold is a slackfake.Fake.BeforeAnswer hook.
func (b *barrier) hold(string, url.Values) {
	b.mu.Lock()
	b.arrived++
	if b.arrived == b.n {
		b.once.Do(func() { close(b.open) })
	}
	b.mu.Unlock()
	timer := time.NewTimer(b.timeout)
	defer timer.Stop()
	select {
	case <-b.open:
	case <-timer.C:
		b.mu.Lock()
		if !b.broken {
			b.broken, b.gaveUp = true, b.arrived
		}
		b.mu.Unlock()
		b.once.Do(func() { close(b.open) })
	}
}

// result reports how many calls had arrived when the barrier gave up, and
// whether all n arrived together.
func (b *barrier) result() (arrived int, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.gaveUp, !b.broken
}
