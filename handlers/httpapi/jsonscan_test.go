package httpapi

import (
	"bytes"
	"encoding/json"
	"testing"
)

// scanSeeds are JSON texts, valid and not, for the scanner's tests.
var scanSeeds = []string{
	`{}`, `[]`, `{"a":[1,-2.5e+3,true,false,null,"x\"\\\/\b\f\n\r\t\u00e9"]}`, ` [ { "a" : { } } , [ ] ] `,
	`0`, `-0`, `01`, `1.`, `.5`, `1e`, `-`, `+1`, `"\u12"`, `"\x"`, "\"\x01\"", `"é"`, "\"\xff\"",
	`{"a"}`, `{"a":1,}`, `[1,]`, `{,}`, `[1 2]`, `{"a":1 "b":2}`, `tru`, `nul`, `{"a":1}}`, `[[[[]]]]`,
	`{1:2}`, `"`, `{"a":"b`, `[` + string(bytes.Repeat([]byte("["), maxScanDepth)) + string(bytes.Repeat([]byte("]"), maxScanDepth+1)),
}

// FuzzJSONScannerSkip: skip accepts exactly the valid JSON values (with
// only whitespace after them), except that it may decline nesting deeper
// than maxScanDepth.
func FuzzJSONScannerSkip(f *testing.F) {
	for _, s := range scanSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s := jsonScanner{b: b}
		raw, ok := s.skip()
		whole := ok && skipSpace(b, s.i) == len(b)
		valid := json.Valid(b)
		if whole && !valid {
			t.Fatalf("skip accepted %q, which is not JSON", b)
		}
		if valid && !whole && bytes.Count(b, []byte("["))+bytes.Count(b, []byte("{")) < maxScanDepth {
			t.Fatalf("skip refused %q, which is JSON", b)
		}
		if whole && !bytes.Equal(raw, bytes.TrimSpace(b)) {
			t.Fatalf("skip(%q) returned %q", b, raw)
		}
	})
}

// FuzzJSONScannerStr: str reads exactly the strings encoding/json accepts;
// one it calls plain is its value, and appendUnquoted gives the value of
// any, as encoding/json decodes it.
func FuzzJSONScannerStr(f *testing.F) {
	for _, s := range []string{`"a"`, `"a\"b"`, `"\u00e9"`, `"é"`, "\"\xff\"", "\"\x7f\"", `"\ud800"`, `"\ud83d\ude00"`, `"\ud83d\u0041"`, `"\udc00\ud800"`, "\"\xed\xa0\x80\"", "\"\xef\xbf\xbd\"", `"x`, "\"\t\"", `"\/"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s := jsonScanner{b: b}
		raw, plain, ok := s.str()
		var want string
		err := json.Unmarshal(b[:s.i], &want)
		switch {
		case ok && err != nil:
			t.Fatalf("str accepted %q: %v", b[:s.i], err)
		case !ok && len(b) > 0 && b[0] == '"' && validStringPrefix(b):
			t.Fatalf("str refused %q, which starts with a JSON string", b)
		case ok && plain && string(raw) != want:
			t.Fatalf("str(%q) = %q plain, encoding/json says %q", b, raw, want)
		case ok && string(appendUnquoted(nil, raw)) != want:
			t.Fatalf("appendUnquoted(%q) = %q, encoding/json says %q", raw, appendUnquoted(nil, raw), want)
		}
	})
}

// validStringPrefix reports whether b starts with a JSON string.
func validStringPrefix(b []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(b))
	var s string
	return dec.Decode(&s) == nil
}

func TestJSONScannerSkipReturnsTheValue(t *testing.T) {
	s := jsonScanner{b: []byte(` {"a":[1, {"b":"}"}]} ,"next"`)}
	raw, ok := s.skip()
	if !ok || string(raw) != `{"a":[1, {"b":"}"}]}` || !s.consume(',') {
		t.Fatalf("skip = %q, %v; then at %q", raw, ok, s.b[s.i:])
	}
}

func TestStringCache(t *testing.T) {
	var c stringCache
	in := []byte("block_actions")
	first := c.make(in)
	in[0] = 'X' // the string must not share the payload's bytes
	if first != "block_actions" {
		t.Fatalf("cached string changed with its source: %q", first)
	}
	if got := c.make([]byte("block_actions")); got != "block_actions" {
		t.Fatalf("make = %q", got)
	}
	if n := testing.AllocsPerRun(100, func() { c.make([]byte("block_actions")) }); n != 0 {
		t.Errorf("a cached string allocates %v times", n)
	}
	for _, s := range []string{"", "U0ALICE001", "a-string-longer-than-sixteen"} {
		if got := c.make([]byte(s)); got != s {
			t.Errorf("make(%q) = %q", s, got)
		}
		var none *stringCache
		if got := none.make([]byte(s)); got != s {
			t.Errorf("nil cache: make(%q) = %q", s, got)
		}
	}
	for i := range 1000 { // slots are reused: whatever they hold, the answer is right
		s := string(rune('a'+i%26)) + string(rune('a'+i/26%26))
		if got := c.make([]byte(s)); got != s {
			t.Fatalf("make(%q) = %q", s, got)
		}
	}
}
