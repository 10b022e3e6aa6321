package alertui

// Decoding shared by the Mackerel and CloudWatch parsers: strict about
// structure, lenient about scalar types.

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// ErrBadPayload is wrapped by every parse error: the input was malformed and
// retrying the same bytes cannot help. Its message says what was wrong and
// is safe to return to the sender.
var ErrBadPayload = errors.New("bad payload")

// MaxBody is the largest payload accepted (1 MiB; Mackerel and CloudWatch
// payloads are a few KiB).
const MaxBody = 1 << 20

func badf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrBadPayload}, args...)...)
}

// decodeErr turns an encoding/json error into a readable reason.
func decodeErr(what string, err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return badf("%s: invalid JSON at byte %d (counting from 1): %v", what, syn.Offset, err)
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "(top level)"
		}
		return badf("%s: field %s: expected %s, got %s", what, field, typ.Type, typ.Value)
	case errors.Is(err, ErrBadPayload):
		return fmt.Errorf("%s: %w", what, err)
	}
	return badf("%s: %v", what, err)
}

// decodeObject unmarshals data into v after checking that it is one JSON
// object of acceptable size.
func decodeObject(what string, data []byte, v any) error {
	if len(data) > MaxBody {
		return badf("%s: body of %d bytes exceeds %d", what, len(data), MaxBody)
	}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return badf("%s: empty body", what)
	}
	if trimmed[0] != '{' {
		return badf("%s: expected a JSON object", what)
	}
	if err := json.Unmarshal(trimmed, v); err != nil {
		return decodeErr(what, err)
	}
	return nil
}

// payloadKey is a short content hash used to key notices, so a retried
// delivery of the same bytes deduplicates.
func payloadKey(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:8])
}

// text is a string field that also accepts null, numbers and booleans
// (sources are not consistent about scalar types). Objects and arrays are an
// error.
type text string

func (t *text) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0 || string(b) == "null":
		*t = ""
	case b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*t = text(s)
	case b[0] == '{' || b[0] == '[':
		return typeErr(kindOf(b), reflect.TypeFor[string]())
	default: // number or boolean: keep the literal
		*t = text(b)
	}
	return nil
}

// number is an optional float64 that accepts null, JSON numbers and numeric
// strings ("1.5"). Absent or null leaves it nil.
type number struct{ v *float64 }

func (n *number) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || string(b) == "null" {
		n.v = nil
		return nil
	}
	s := string(b)
	if b[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		s = strings.TrimSpace(s)
		if s == "" {
			n.v = nil
			return nil
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return typeErr(clip(string(b)), reflect.TypeFor[float64]())
	}
	n.v = &f
	return nil
}

// epoch is a Unix timestamp in seconds (possibly fractional), or in
// milliseconds when it is too large to be seconds (Mackerel's createdAt).
// null, 0 and absent mean "not set".
type epoch struct{ t time.Time }

// msThreshold separates seconds from milliseconds: 1e11 seconds is the year
// 5138, 1e11 milliseconds is 1973.
const msThreshold = 1e11

func (e *epoch) UnmarshalJSON(b []byte) error {
	var n number
	if err := n.UnmarshalJSON(b); err != nil {
		return typeErr(clip(string(b)), reflect.TypeFor[time.Time]())
	}
	if n.v == nil || *n.v <= 0 {
		e.t = time.Time{}
		return nil
	}
	f := *n.v
	if f >= msThreshold {
		f /= 1000
	}
	if f >= msThreshold { // still absurd (µs or garbage): refuse rather than invent a date
		return typeErr("out-of-range "+clip(string(b)), reflect.TypeFor[time.Time]())
	}
	sec, frac := math.Modf(f)
	e.t = time.Unix(int64(sec), int64(math.Round(frac*1e9))).UTC()
	return nil
}

// boolean is an optional boolean accepting true/false, "true"/"false" and null.
type boolean struct{ v *bool }

func (f *boolean) UnmarshalJSON(b []byte) error {
	s := strings.Trim(strings.TrimSpace(string(b)), `"`)
	switch strings.ToLower(s) {
	case "null", "":
		f.v = nil
	case "true":
		t := true
		f.v = &t
	case "false":
		v := false
		f.v = &v
	default:
		return typeErr(clip(string(b)), reflect.TypeFor[bool]())
	}
	return nil
}

// stringMap is a map[string]string for optional decorations (alarm tags,
// dimensions): values that are not scalars are skipped and a value that is
// not an object leaves it empty, so an odd tag never costs an alarm.
type stringMap map[string]string

func (m *stringMap) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		*m = nil
		return nil // deliberate leniency: see the type comment
	}
	out := make(stringMap, len(raw))
	for k, v := range raw {
		var t text
		if err := t.UnmarshalJSON(v); err == nil && t != "" {
			out[k] = string(t)
		}
	}
	*m = out
	return nil
}

func kindOf(b []byte) string {
	if len(b) == 0 {
		return "nothing"
	}
	switch b[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "bool"
	case 'n':
		return "null"
	}
	return "number"
}

// typeErr reports a value of the wrong type; encoding/json adds the field
// path, which decodeErr then shows.
func typeErr(value string, t reflect.Type) error {
	return &json.UnmarshalTypeError{Value: value, Type: t}
}

// clip shortens s for error messages without splitting a character.
func clip(s string) string {
	const max = 40
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
