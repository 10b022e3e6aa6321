package httpapi

import (
	"strconv"

	json "github.com/go-json-experiment/json/v1"
	"github.com/slack-go/slack"
)

// readInteraction fills w (zero) from payload as decoding payload into w
// does, reading by hand the members a click carries — matched by their
// exact names, with string, boolean and integer values and objects of
// them — and handing every other member to the decoder one at a time, in
// payload order, so that what it does not know is decoded exactly as
// before. Names that differ only in case, escapes in names, odd types:
// all go to the decoder or make readInteraction decline.
//
// It reports false when it cannot vouch for the result: payload is not
// valid JSON, a value has a type its field cannot take, a name has an
// escape, the "actions" are not all block actions, or the decoder refused
// a part. The caller then zeroes w and decodes the whole payload, which
// repeats any error precisely.
//
// A click read this way costs less than half of decoding it
// (BenchmarkParseInteraction, BENCHMARKS.md); FuzzParseInteraction checks
// the result against slack-go's decoder.
func readInteraction(payload []byte, w *wireInteraction, strs *stringCache) bool {
	s := jsonScanner{b: payload, strs: strs}
	ok := s.peek() == '{' && s.object(w, func(s *jsonScanner, name []byte) (bool, bool) {
		switch string(name) {
		case "type":
			return true, s.string((*string)(&w.Type))
		case "token":
			return true, s.string(&w.Token)
		case "callback_id":
			return true, s.string(&w.CallbackID)
		case "response_url":
			return true, s.string(&w.ResponseURL)
		case "trigger_id":
			return true, s.string(&w.TriggerID)
		case "action_ts":
			return true, s.string(&w.ActionTs)
		case "api_app_id":
			return true, s.string(&w.APIAppID)
		case "is_enterprise_install":
			return true, s.bool(&w.IsEnterpriseInstall)
		case "user":
			return true, s.user(&w.User)
		case "team":
			return true, s.team(&w.Team)
		case "channel":
			return true, s.channel(&w.Channel)
		case "enterprise":
			return true, s.enterprise(&w.Enterprise)
		case "container":
			return true, s.container(&w.Container)
		case "message":
			return true, s.message(&w.Message)
		case "original_message":
			return true, s.message(&w.OriginalMessage)
		case "view":
			return true, s.decode(&w.View)
		case "state":
			raw, ok := s.skip()
			w.RawState = append(w.RawState[:0], raw...) // as json.RawMessage decodes
			return true, ok
		case "actions":
			return true, s.actions(w)
		}
		return false, true
	})
	s.space()
	return ok && s.i == len(s.b)
}

// memberReader reads the value of the member called name (s is just past
// its colon) by hand, or reports known false, having read nothing, to have
// the decoder decode it.
type memberReader func(s *jsonScanner, name []byte) (known, ok bool)

// object reads an object (or null, which leaves v as it was) into v, a
// pointer to a struct: read reads the members it knows; each other member
// is decoded into v by the decoder as a one-member object, which is what
// decoding the whole object does with it.
func (s *jsonScanner) object(v any, read memberReader) bool {
	switch s.peek() {
	case 'n':
		return s.literal("null")
	case '{':
		s.i++
	default:
		return false
	}
	if s.consume('}') {
		return true
	}
	for {
		s.space()
		start := s.i
		name, plain, ok := s.name()
		if !ok || !plain {
			return false
		}
		known, ok := read(s, name)
		if !known {
			ok = s.member(start, v)
		}
		if !ok {
			return false
		}
		if !s.consume(',') {
			return s.consume('}')
		}
	}
}

// member reads the value of the member whose name starts at start and
// decodes the member into v as a one-member object.
func (s *jsonScanner) member(start int, v any) bool {
	if _, ok := s.skip(); !ok {
		return false
	}
	obj := make([]byte, 0, s.i-start+2)
	obj = append(append(append(obj, '{'), s.b[start:s.i]...), '}')
	return json.Unmarshal(obj, v) == nil
}

// decode reads a value and decodes it into v.
func (s *jsonScanner) decode(v any) bool {
	raw, ok := s.skip()
	return ok && json.Unmarshal(raw, v) == nil
}

// string reads a string (or null, which leaves *dst as it was) into dst.
func (s *jsonScanner) string(dst *string) bool {
	switch s.peek() {
	case 'n':
		return s.literal("null")
	case '"':
		raw, plain, ok := s.str()
		switch {
		case !ok:
			return false
		case plain:
			*dst = s.strs.make(raw)
			return true
		default: // escapes or bad UTF-8
			*dst = string(appendUnquoted(make([]byte, 0, len(raw)), raw))
			return true
		}
	}
	return false
}

// bool reads true, false or null (which leaves *dst as it was) into dst.
func (s *jsonScanner) bool(dst *bool) bool {
	switch s.peek() {
	case 't':
		*dst = true
		return s.literal("true")
	case 'f':
		*dst = false
		return s.literal("false")
	case 'n':
		return s.literal("null")
	}
	return false
}

// optionalBool reads true or false into a new *dst, or null as nil.
func (s *jsonScanner) optionalBool(dst **bool) bool {
	if s.peek() == 'n' {
		*dst = nil
		return s.literal("null")
	}
	b := new(bool)
	*dst = b
	return s.bool(b)
}

// int64 reads an integer (or null, which leaves *dst as it was) into dst;
// a fraction, exponent or overflow is the decoder's to refuse.
func (s *jsonScanner) int64(dst *int64) bool {
	if s.peek() == 'n' {
		return s.literal("null")
	}
	start := s.i
	if !s.number() {
		return false
	}
	n, err := strconv.ParseInt(string(s.b[start:s.i]), 10, 64)
	*dst = n
	return err == nil
}

// skipMember reads a value that is validated and not decoded.
func (s *jsonScanner) skipMember() bool {
	_, ok := s.skip()
	return ok
}

func (s *jsonScanner) user(u *slack.User) bool {
	return s.object(u, func(s *jsonScanner, name []byte) (bool, bool) {
		switch string(name) {
		case "id":
			return true, s.string(&u.ID)
		case "team_id":
			return true, s.string(&u.TeamID)
		case "name":
			return true, s.string(&u.Name)
		case "username":
			return true, s.string(&u.Username)
		}
		return false, true
	})
}

func (s *jsonScanner) team(t *slack.Team) bool {
	return s.object(t, func(s *jsonScanner, name []byte) (bool, bool) {
		switch string(name) {
		case "id":
			return true, s.string(&t.ID)
		case "domain":
			return true, s.string(&t.Domain)
		case "name":
			return true, s.string(&t.Name)
		case "enterprise_id":
			return true, s.string(&t.EnterpriseID)
		case "enterprise_name":
			return true, s.string(&t.EnterpriseName)
		}
		return false, true
	})
}

func (s *jsonScanner) channel(c *slack.Channel) bool {
	return s.object(c, func(s *jsonScanner, name []byte) (bool, bool) {
		switch string(name) {
		case "id":
			return true, s.string(&c.ID)
		case "name":
			return true, s.string(&c.Name)
		}
		return false, true
	})
}

func (s *jsonScanner) enterprise(e *slack.Enterprise) bool {
	return s.object(e, func(s *jsonScanner, name []byte) (bool, bool) {
		switch string(name) {
		case "id":
			return true, s.string(&e.ID)
		case "name":
			return true, s.string(&e.Name)
		}
		return false, true
	})
}

func (s *jsonScanner) container(c *slack.Container) bool {
	return s.object(c, func(s *jsonScanner, name []byte) (bool, bool) {
		switch string(name) {
		case "type":
			return true, s.string(&c.Type)
		case "message_ts":
			return true, s.string(&c.MessageTs)
		case "channel_id":
			return true, s.string(&c.ChannelID)
		case "view_id":
			return true, s.string(&c.ViewID)
		case "thread_ts":
			return true, s.string(&c.ThreadTs)
		case "is_ephemeral":
			return true, s.bool(&c.IsEphemeral)
		case "is_app_unfurl":
			return true, s.bool(&c.IsAppUnfurl)
		}
		return false, true
	})
}

// message reads the message a click came from, its blocks, attachments
// and files validated and not decoded (lightMessage).
func (s *jsonScanner) message(m *lightMessage) bool {
	return s.object(m, func(s *jsonScanner, name []byte) (bool, bool) {
		switch string(name) {
		case "blocks", "attachments", "files":
			return true, s.skipMember()
		case "app_id": // Slack sends it; slack.Msg has no such field
			return true, s.skipMember()
		case "type":
			return true, s.string(&m.Type)
		case "subtype":
			return true, s.string(&m.SubType)
		case "text":
			return true, s.string(&m.Text)
		case "ts":
			return true, s.string(&m.Timestamp)
		case "thread_ts":
			return true, s.string(&m.ThreadTimestamp)
		case "user":
			return true, s.string(&m.User)
		case "channel":
			return true, s.string(&m.Channel)
		case "bot_id":
			return true, s.string(&m.BotID)
		case "username":
			return true, s.string(&m.Username)
		case "team":
			return true, s.string(&m.Team)
		case "client_msg_id":
			return true, s.string(&m.ClientMsgID)
		case "event_ts":
			return true, s.string(&m.EventTimestamp)
		case "response_type":
			return true, s.string(&m.ResponseType)
		case "replace_original":
			return true, s.bool(&m.ReplaceOriginal)
		case "delete_original":
			return true, s.bool(&m.DeleteOriginal)
		case "is_starred":
			return true, s.bool(&m.IsStarred)
		case "bot_profile":
			return true, pointer(s, &m.BotProfile, (*jsonScanner).botProfile)
		case "edited":
			return true, pointer(s, &m.Edited, (*jsonScanner).edited)
		}
		return false, true
	})
}

// pointer reads an object (or null, which sets *p nil) into *p,
// allocating it if nil, as the decoder does with a pointer field.
func pointer[T any](s *jsonScanner, p **T, read func(s *jsonScanner, v *T) bool) bool {
	if s.peek() == 'n' {
		*p = nil
		return s.literal("null")
	}
	if *p == nil {
		*p = new(T)
	}
	return read(s, *p)
}

func (s *jsonScanner) botProfile(b *slack.BotProfile) bool {
	return s.object(b, func(s *jsonScanner, name []byte) (bool, bool) {
		switch string(name) {
		case "id":
			return true, s.string(&b.ID)
		case "app_id":
			return true, s.string(&b.AppID)
		case "name":
			return true, s.string(&b.Name)
		case "team_id":
			return true, s.string(&b.TeamID)
		case "deleted":
			return true, s.bool(&b.Deleted)
		case "updated":
			return true, s.int64(&b.Updated)
		case "icons":
			return true, pointer(s, &b.Icons, (*jsonScanner).icons)
		}
		return false, true
	})
}

func (s *jsonScanner) icons(i *slack.Icons) bool {
	return s.object(i, func(s *jsonScanner, name []byte) (bool, bool) {
		switch string(name) {
		case "image_36":
			return true, s.string(&i.Image36)
		case "image_48":
			return true, s.string(&i.Image48)
		case "image_72":
			return true, s.string(&i.Image72)
		case "image_132":
			return true, s.string(&i.Image132)
		case "image_230":
			return true, s.string(&i.Image230)
		}
		return false, true
	})
}

func (s *jsonScanner) edited(e *slack.Edited) bool {
	return s.object(e, func(s *jsonScanner, name []byte) (bool, bool) {
		switch string(name) {
		case "user":
			return true, s.string(&e.User)
		case "ts":
			return true, s.string(&e.Timestamp)
		}
		return false, true
	})
}

// actions reads the "actions" array onto the end of w.Actions (as
// wireActions and slack-go do with a repeated member). Each element must be
// a block action — an object whose member named exactly "block_id" has a
// string as its last value — or the payload is slack-go's to decode, which
// files the others as attachment actions.
func (s *jsonScanner) actions(w *wireInteraction) bool {
	switch s.peek() {
	case 'n':
		return s.literal("null")
	case '[':
		s.i++
	default:
		return false
	}
	if s.consume(']') {
		return true
	}
	for {
		if s.peek() != '{' {
			return false
		}
		w.Actions = append(w.Actions, wireAction{block: true})
		if !s.blockAction(&w.Actions[len(w.Actions)-1].BlockAction) {
			return false
		}
		if !s.consume(',') {
			return s.consume(']')
		}
	}
}

// blockAction reads one element of "actions" into a (zero) and reports
// whether it is a block action.
func (s *jsonScanner) blockAction(a *slack.BlockAction) bool {
	block := false
	ok := s.object(a, func(s *jsonScanner, name []byte) (bool, bool) {
		switch string(name) {
		case "block_id":
			switch s.peek() {
			case '"':
				block = true
			case 'n':
				block = false
			default:
				return true, false // not a block action: slack-go decides
			}
			return true, s.string(&a.BlockID)
		case "action_id":
			return true, s.string(&a.ActionID)
		case "type":
			return true, s.string((*string)(&a.Type))
		case "value":
			return true, s.string(&a.Value)
		case "action_ts":
			return true, s.string(&a.ActionTs)
		case "text":
			t := &a.Text
			return true, s.object(t, func(s *jsonScanner, name []byte) (bool, bool) {
				switch string(name) {
				case "type":
					return true, s.string(&t.Type)
				case "text":
					return true, s.string(&t.Text)
				case "emoji":
					return true, s.optionalBool(&t.Emoji)
				case "verbatim":
					return true, s.bool(&t.Verbatim)
				}
				return false, true
			})
		}
		return false, true
	})
	return ok && block
}
