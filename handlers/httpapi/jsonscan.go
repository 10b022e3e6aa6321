package httpapi

import (
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// jsonScanner reads JSON from b front to back and checks its grammar as it
// goes, for the interaction decoder's hand-read path. Every method leaves
// i just past what it read and reports false on anything that is not
// valid JSON (or that it declines: nesting deeper than maxScanDepth), in
// which case the caller hands the whole input to a full decoder, which
// then gives the precise error.
type jsonScanner struct {
	b    []byte
	i    int
	strs *stringCache // may be nil
}

// stringCache keeps recently made short strings, so that the values
// payloads repeat (type names, user, team and channel ids) are allocated
// once, not per payload. A string is immutable: sharing one is safe.
type stringCache [256]string

// make returns b as a string, from the cache when it holds it.
func (c *stringCache) make(b []byte) string {
	if c == nil || len(b) == 0 || len(b) > 16 {
		return string(b)
	}
	h := uint32(2166136261) // FNV-1a
	for _, x := range b {
		h = (h ^ uint32(x)) * 16777619
	}
	slot := &c[h%uint32(len(c))]
	if *slot == string(b) {
		return *slot
	}
	*slot = string(b)
	return *slot
}

// maxScanDepth bounds skip's nesting. Slack's payloads nest far less;
// anything deeper is declined, not refused (encoding/json allows 10000).
const maxScanDepth = 64

// space skips JSON whitespace.
func (s *jsonScanner) space() {
	s.i = skipSpace(s.b, s.i)
}

// consume skips whitespace and then c if it is next.
func (s *jsonScanner) consume(c byte) bool {
	s.space()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// peek skips whitespace and returns the next byte, or 0 at the end.
func (s *jsonScanner) peek() byte {
	s.space()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// str reads a string at s.i and returns its bytes between the quotes.
// plain reports that they are the string's value as encoding/json would
// decode it: no escapes and valid UTF-8.
func (s *jsonScanner) str() (raw []byte, plain, ok bool) {
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return nil, false, false
	}
	start := s.i + 1
	plain, ascii := true, true
	for i := start; i < len(s.b); i++ {
		if plainByte[s.b[i]] {
			continue
		}
		switch c := s.b[i]; {
		case c == '"':
			s.i = i + 1
			raw = s.b[start:i]
			if !ascii && !utf8.Valid(raw) {
				plain = false // encoding/json would replace the bad bytes
			}
			return raw, plain, true
		case c == '\\':
			plain = false
			if i+1 >= len(s.b) {
				return nil, false, false
			}
			i++
			switch s.b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(s.b) {
					return nil, false, false
				}
				for _, h := range s.b[i+1 : i+5] {
					if hexValue[h] == 0xff {
						return nil, false, false
					}
				}
				i += 4
			default:
				return nil, false, false
			}
		case c < 0x20:
			return nil, false, false
		case c >= 0x80:
			ascii = false
		}
	}
	return nil, false, false
}

// appendUnquoted appends the value of the string whose bytes between the
// quotes are raw (as str returned them: escapes well formed) to dst, by
// encoding/json's rules: a surrogate escape that does not pair and a byte
// that is not UTF-8 become U+FFFD.
func appendUnquoted(dst, raw []byte) []byte {
	for i := 0; i < len(raw); {
		c := raw[i]
		switch {
		case c == '\\':
			switch e := raw[i+1]; e {
			case 'u':
				r := hex4(raw[i+2 : i+6])
				i += 6
				if utf16.IsSurrogate(r) {
					if i+6 <= len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
						if pair := utf16.DecodeRune(r, hex4(raw[i+2:i+6])); pair != unicode.ReplacementChar {
							dst = utf8.AppendRune(dst, pair)
							i += 6
							continue
						}
					}
					r = unicode.ReplacementChar
				}
				dst = utf8.AppendRune(dst, r)
				continue
			case 'b':
				dst = append(dst, '\b')
			case 'f':
				dst = append(dst, '\f')
			case 'n':
				dst = append(dst, '\n')
			case 'r':
				dst = append(dst, '\r')
			case 't':
				dst = append(dst, '\t')
			default: // '"', '\\', '/'
				dst = append(dst, e)
			}
			i += 2
		case c < utf8.RuneSelf:
			dst = append(dst, c)
			i++
		default:
			r, size := utf8.DecodeRune(raw[i:])
			if r == utf8.RuneError && size == 1 {
				dst = utf8.AppendRune(dst, unicode.ReplacementChar)
			} else {
				dst = append(dst, raw[i:i+size]...)
			}
			i += size
		}
	}
	return dst
}

// hex4 is the value of four hexadecimal digits (checked by str).
func hex4(b []byte) rune {
	return rune(hexValue[b[0]])<<12 | rune(hexValue[b[1]])<<8 | rune(hexValue[b[2]])<<4 | rune(hexValue[b[3]])
}

// plainByte marks the bytes a string can hold as they are: printable
// ASCII but the quote and the backslash. Read only.
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// literal reads the literal word (true, false or null) at s.i.
func (s *jsonScanner) literal(word string) bool {
	if len(s.b)-s.i >= len(word) && string(s.b[s.i:s.i+len(word)]) == word {
		s.i += len(word)
		return true
	}
	return false
}

// number reads a number at s.i, as JSON's grammar has it.
func (s *jsonScanner) number() bool {
	b, i := s.b, s.i
	digits := func() bool {
		start := i
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		return i > start
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case !digits():
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if !digits() {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if !digits() {
			return false
		}
	}
	s.i = i
	return true
}

// name reads an object member's name and its colon.
func (s *jsonScanner) name() (raw []byte, plain, ok bool) {
	s.space()
	if raw, plain, ok = s.str(); !ok || !s.consume(':') {
		return nil, false, false
	}
	return raw, plain, true
}

// skip reads one value, whatever it is, and returns its bytes.
func (s *jsonScanner) skip() ([]byte, bool) {
	s.space()
	start := s.i
	var objects uint64 // bit n set: the container at depth n+1 is an object
	depth := 0
	for {
		// A value.
		s.space()
		if s.i >= len(s.b) {
			return nil, false
		}
		ok := true
		switch c := s.b[s.i]; {
		case c == '{' || c == '[':
			if depth == maxScanDepth {
				return nil, false
			}
			s.i++
			end := byte(']')
			if c == '{' {
				end = '}'
			}
			if s.consume(end) {
				break // empty: a complete value
			}
			objects = objects<<1 | boolBit(c == '{')
			depth++
			if c == '{' {
				_, _, ok = s.name()
			}
			if !ok {
				return nil, false
			}
			continue // its first member's value
		case c == '"':
			_, _, ok = s.str()
		case c == 't':
			ok = s.literal("true")
		case c == 'f':
			ok = s.literal("false")
		case c == 'n':
			ok = s.literal("null")
		default:
			ok = s.number()
		}
		if !ok {
			return nil, false
		}
		// What follows a value: closes, then a comma or the end.
		for depth > 0 {
			inObject := objects&1 == 1
			if s.consume(',') {
				if inObject {
					if _, _, ok := s.name(); !ok {
						return nil, false
					}
				}
				break
			}
			closer := byte(']')
			if inObject {
				closer = '}'
			}
			if !s.consume(closer) {
				return nil, false
			}
			objects >>= 1
			depth--
		}
		if depth == 0 {
			return s.b[start:s.i], true
		}
	}
}

func boolBit(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}
