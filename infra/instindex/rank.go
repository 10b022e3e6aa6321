package instindex

import (
	"cmp"
	"slices"
	"strings"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/bot/domainjoin"
)

// MaxSearchResults is the most instances a search returns: Slack's limit
// on the options of one external select.
const MaxSearchResults = 100

// LiveStates are the instance states the search offers and tokken acts
// on: an instance shutting down or terminated cannot be granted.
func LiveStates() []string { return []string{"pending", "running", "stopping", "stopped"} }

// Rank is the one definition of tokken's instance search, shared by
// [Search] (from the index) and ec2fleet's Fleet.Search (live from EC2): it
// returns up to limit of cands (at most [MaxSearchResults]; limit ≤ 0 means
// that many) that are live (pending, running, stopping, stopped) and whose
// id starts with query or whose Name tag contains it, ignoring case and
// surrounding spaces. Running instances come first, then matches at the
// start of the name or id, then named before unnamed, then by name and id.
// An empty query keeps every live instance, in that order. The targets
// carry the instances' tags (Name included), for profile selectors.
func Rank(query string, cands []domainjoin.Instance, limit int) []bot.Target {
	if limit <= 0 || limit > MaxSearchResults {
		limit = MaxSearchResults
	}
	lq := strings.ToLower(strings.TrimSpace(query))
	type hit struct {
		in      domainjoin.Instance
		running bool
		prefix  bool
		name    string
	}
	var hits []hit
	for _, in := range cands {
		if !slices.Contains(LiveStates(), in.State) {
			continue
		}
		ln := strings.ToLower(in.Name)
		idMatch := lq != "" && strings.HasPrefix(strings.ToLower(in.ID), lq)
		if lq != "" && !idMatch && !strings.Contains(ln, lq) {
			continue
		}
		hits = append(hits, hit{in: in, name: ln, prefix: idMatch || strings.HasPrefix(ln, lq), running: in.State == "running"})
	}
	slices.SortFunc(hits, func(a, b hit) int {
		if a.running != b.running {
			if a.running {
				return -1
			}
			return 1
		}
		if a.prefix != b.prefix {
			if a.prefix {
				return -1
			}
			return 1
		}
		if (a.name == "") != (b.name == "") { // named instances before unnamed ones
			if a.name != "" {
				return -1
			}
			return 1
		}
		return cmp.Or(cmp.Compare(a.name, b.name), cmp.Compare(a.in.ID, b.in.ID))
	})
	out := make([]bot.Target, 0, min(len(hits), limit))
	for _, h := range hits[:min(len(hits), limit)] {
		out = append(out, bot.Target{ID: h.in.ID, Tags: h.in.Tags})
	}
	return out
}
