package httpapi

import (
	"errors"
	"fmt"
	"sync"

	json "github.com/go-json-experiment/json/v1"
	"github.com/slack-go/slack"
)

// ParseInteraction decodes an interaction payload (the "payload" form
// field Slack posts to /slack/interactions and /slack/options) into the
// slack.InteractionCallback the handlers receive.
//
// It fills every field slack-go's own decoder fills except the blocks,
// attachments and files of the message the click came from and the blocks
// of the view: tokken's handlers never read those (they act on the action,
// the container, the view's state and metadata, and re-render messages
// from the store), and decoding them is most of the cost of a click —
// slack-go decodes the payload twice and every block once more through a
// map (BENCHMARKS.md). They are still checked to be valid JSON. The
// members a click carries are read by hand (readInteraction), the rest by
// go-json-experiment's encoding/json-compatible decoder. A payload
// this cannot decode with certainty (an action without a string block_id,
// as legacy interactive messages carry) is handed to slack-go, so nothing
// slack-go accepts is refused here.
func ParseInteraction(payload []byte) (slack.InteractionCallback, error) {
	return parseInteraction(payload, new(wireInteraction), nil)
}

// interactionParser is ParseInteraction keeping its decoding shapes
// (about 6 KB each, a third of a click's allocations) and a cache of the
// short strings clicks repeat (type names, ids) between clicks.
type interactionParser struct {
	states sync.Pool // of *parseState
}

// parseState is what one parse borrows from an interactionParser.
type parseState struct {
	w    wireInteraction
	strs stringCache
}

// Parse is ParseInteraction.
func (p *interactionParser) Parse(payload []byte) (slack.InteractionCallback, error) {
	st, _ := p.states.Get().(*parseState)
	if st == nil {
		st = new(parseState)
	}
	defer func() {
		st.w = wireInteraction{} // nothing decoded outlives the call through w
		p.states.Put(st)
	}()
	return parseInteraction(payload, &st.w, &st.strs)
}

// parseInteraction decodes payload with w, a zero wireInteraction, and
// strs (nil: no cache).
func parseInteraction(payload []byte, w *wireInteraction, strs *stringCache) (slack.InteractionCallback, error) {
	if len(payload) == 0 {
		return slack.InteractionCallback{}, errors.New("payload is empty")
	}
	if !readInteraction(payload, w, strs) {
		*w = wireInteraction{}
		if err := json.Unmarshal(payload, w); err != nil {
			return parseWithSlackGo(payload)
		}
	}
	if !w.blockActionsOnly() {
		return parseWithSlackGo(payload)
	}
	ic := slack.InteractionCallback(w.plainInteraction)
	ic.Message = w.Message.Message
	ic.OriginalMessage = w.OriginalMessage.Message
	ic.View = w.View.View
	ic.ActionCallback = slack.ActionCallbacks{}
	for i := range w.Actions {
		// The callback may point into w.Actions: a pooled shape is zeroed
		// after use, never truncated, so its array is not written again.
		ic.ActionCallback.BlockActions = append(ic.ActionCallback.BlockActions, &w.Actions[i].BlockAction)
	}
	switch ic.Type {
	case slack.InteractionTypeBlockActions:
		switch {
		case string(ic.RawState) == emptyState:
			// A message button's state, as Slack writes it: spares a
			// second decoder call for the most frequent click.
			ic.BlockActionState = &slack.BlockActionStates{Values: map[string]map[string]slack.BlockAction{}}
		case len(ic.RawState) > 0:
			var state *slack.BlockActionStates // a local, so that ic stays on the stack
			if err := json.Unmarshal(ic.RawState, &state); err != nil {
				return slack.InteractionCallback{}, fmt.Errorf("state: %w", err)
			}
			ic.BlockActionState = state
		}
	case slack.InteractionTypeDialogSubmission:
		ic.State = string(ic.RawState)
	}
	return ic, nil
}

func parseWithSlackGo(payload []byte) (slack.InteractionCallback, error) {
	var ic slack.InteractionCallback
	if err := json.Unmarshal(payload, &ic); err != nil {
		return slack.InteractionCallback{}, err
	}
	return ic, nil
}

// emptyState is the state of a block_actions payload with no inputs.
const emptyState = `{"values":{}}`

// plainInteraction is slack.InteractionCallback without its UnmarshalJSON
// method, so that embedding it decodes its fields directly.
type plainInteraction slack.InteractionCallback

// wireInteraction is the decoding shape: the callback's own fields, with
// the message, view and actions replaced by lighter shapes. encoding/json
// gives a field at a shallower depth precedence over an embedded one with
// the same name, so these shadow the callback's.
type wireInteraction struct {
	plainInteraction
	Message         lightMessage `json:"message"`
	OriginalMessage lightMessage `json:"original_message"`
	View            lightView    `json:"view"`
	Actions         wireActions  `json:"actions"`
}

// wireActions is "actions". Like slack-go's ActionCallbacks, a repeated
// member adds its actions to those before it; the decoder alone would
// replace them.
type wireActions []wireAction

// UnmarshalJSON appends the actions in b.
func (as *wireActions) UnmarshalJSON(b []byte) error {
	var more []wireAction
	if err := json.Unmarshal(b, &more); err != nil {
		return err
	}
	*as = append(*as, more...)
	return nil
}

// blockActionsOnly reports whether every action is a block action (has a
// string block_id): slack-go files the others as attachment actions.
func (w *wireInteraction) blockActionsOnly() bool {
	for _, a := range w.Actions {
		if !a.block {
			return false
		}
	}
	return true
}

// lightMessage is a message without the parts tokken never reads.
type lightMessage struct {
	slack.Message
	Blocks      skipped `json:"blocks"`
	Attachments skipped `json:"attachments"`
	Files       skipped `json:"files"`
}

// lightView is a view without its blocks (its state is kept).
type lightView struct {
	slack.View
	Blocks skipped `json:"blocks"`
}

// wireAction is one element of "actions". Like slack-go, it counts as a
// block action when it has a "block_id" key (exactly so spelled: slack-go
// looks it up in a map, not through case-insensitive field matching) whose
// value is a string; anything else is left to slack-go.
type wireAction struct {
	slack.BlockAction
	block bool
}

// UnmarshalJSON decodes a block action.
func (a *wireAction) UnmarshalJSON(b []byte) error {
	block, known := blockIDIsString(b)
	if !known {
		var probe struct {
			BlockID json.RawMessage `json:"block_id,case:strict"`
		}
		if err := json.Unmarshal(b, &probe); err != nil {
			return err
		}
		block = len(probe.BlockID) > 0 && probe.BlockID[0] == '"'
	}
	if a.block = block; !block {
		return nil
	}
	return json.Unmarshal(b, &a.BlockAction)
}

// blockIDIsString reports whether the object obj, valid JSON as the
// decoder hands it to UnmarshalJSON, has a member named exactly "block_id"
// whose value (the last one's, if repeated) is a string. It reads the
// members' names without decoding anything; known is false when it cannot
// answer by reading bytes alone (obj is not an object, or a name has an
// escape), and the caller then asks the decoder.
func blockIDIsString(obj []byte) (block, known bool) {
	i := skipSpace(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return false, false
	}
	i = skipSpace(obj, i+1)
	for i < len(obj) && obj[i] == '"' {
		end := i + 1
		for end < len(obj) && obj[end] != '"' {
			if obj[end] == '\\' {
				return false, false
			}
			end++
		}
		name := obj[i+1 : min(end, len(obj))]
		i = skipSpace(obj, end+1)
		if i >= len(obj) || obj[i] != ':' {
			return false, false
		}
		i = skipSpace(obj, i+1)
		if i >= len(obj) {
			return false, false
		}
		if string(name) == "block_id" {
			block = obj[i] == '"'
		}
		if i = skipValue(obj, i); i < 0 {
			return false, false
		}
		i = skipSpace(obj, i)
		if i < len(obj) && obj[i] == ',' {
			i = skipSpace(obj, i+1)
		}
	}
	if i >= len(obj) || obj[i] != '}' {
		return false, false
	}
	return block, true
}

// skipSpace returns the index of the first byte at or after i that is not
// JSON whitespace.
func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipValue returns the index just past the JSON value starting at b[i]
// (b valid JSON), or -1 if it runs off the end.
func skipValue(b []byte, i int) int {
	depth := 0
	for i < len(b) {
		switch c := b[i]; c {
		case '"':
			for i++; i < len(b) && b[i] != '"'; i++ {
				if b[i] == '\\' {
					i++
				}
			}
			if i >= len(b) {
				return -1
			}
			i++
		case '{', '[':
			depth++
			i++
			continue
		case '}', ']':
			if depth == 0 {
				return i // a number or literal ended at its object's end
			}
			depth--
			i++
		case ',':
			if depth == 0 {
				return i
			}
			i++
			continue
		default: // a number's or literal's bytes, or whitespace
			i++
			continue
		}
		if depth == 0 {
			return i
		}
	}
	return -1
}

// skipped is a JSON value that is validated but not decoded.
type skipped struct{}

// UnmarshalJSON ignores the value.
func (*skipped) UnmarshalJSON([]byte) error { return nil }
