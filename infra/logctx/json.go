package logctx

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"
	"unicode/utf8"
)

// NewJSON returns a Handler over a slog.JSONHandler writing to w with opts
// (nil for the defaults), adding fields as New does. Besides records, it
// writes lines whose attributes the caller has already encoded (LogJSON):
// the per-request access line, where building a slog.Record and encoding
// each attribute costs more than the rest of answering /access help.
//
// Writes to w are serialised, so w need not be safe for concurrent use.
func NewJSON(w io.Writer, opts *slog.HandlerOptions, fields ...Field) *Handler {
	var o slog.HandlerOptions
	if opts != nil {
		o = *opts
	}
	lw := &lockedWriter{w: w}
	h := New(slog.NewJSONHandler(lw, &o), fields...)
	// A ReplaceAttr or a source would change lines in ways only the
	// JSONHandler knows.
	if o.ReplaceAttr == nil && !o.AddSource {
		h.raw = &rawJSON{w: lw, bufs: sync.Pool{New: func() any { return new([]byte) }}}
	}
	return h
}

// rawJSON is what LogJSON writes with, shared by a Handler and those
// derived from it.
type rawJSON struct {
	w    *lockedWriter
	bufs sync.Pool // of *[]byte
}

// lockedWriter serialises the JSONHandler's writes with LogJSON's: each
// line is one Write.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// LogJSON writes one line at level with message msg whose attributes are
// members: JSON object members (`"key":value,…`, no braces, no leading or
// trailing comma) with keys listing their keys. The line is byte for byte
// the one Handle writes for a record of the same time, level, message and
// attributes: the bound attributes (Logger.With) first, then members, then
// the context fields not among keys.
//
// It reports false and writes nothing when it cannot promise that: the
// Handler was not made by NewJSON, or a group is open (Logger.WithGroup).
// The caller then logs the usual way. Otherwise the line is done with
// (true): written, not logged at that level, or lost to a failed write,
// which Logger would drop too.
func (h *Handler) LogJSON(ctx context.Context, level slog.Level, msg string, members []byte, keys ...string) bool {
	if h.raw == nil || h.grouped {
		return false
	}
	if !h.next.Enabled(ctx, level) {
		return true
	}
	bp := h.raw.bufs.Get().(*[]byte)
	b := append((*bp)[:0], `{"time":"`...)
	b = time.Now().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","level":`...)
	b = AppendString(b, level.String())
	b = append(b, `,"msg":`...)
	b = AppendString(b, msg)
	b = append(b, h.pre...)
	if len(members) > 0 {
		b = append(b, ',')
		b = append(b, members...)
	}
	if ctx != nil {
		for _, f := range h.fields {
			if slices.Contains(keys, f.Key) || slices.Contains(h.bound, f.Key) {
				continue
			}
			if v := f.Value(ctx); v != "" {
				b = append(b, ',')
				b = AppendString(b, f.Key)
				b = append(b, ':')
				b = AppendString(b, v)
			}
		}
	}
	b = append(b, "}\n"...)
	// A failed write is dropped, as Logger drops Handle's error: retrying
	// through slog could repeat part of a line.
	_, _ = h.raw.w.Write(b)
	*bp = b
	h.raw.bufs.Put(bp)
	return true
}

// preformat returns attrs as the JSONHandler writes them after the message:
// each member with a leading comma. It asks a JSONHandler, so values
// (groups, LogValuers, errors, times) are encoded exactly as in Handle.
func preformat(attrs []slog.Attr) ([]byte, bool) {
	var buf bytes.Buffer
	r := slog.NewRecord(time.Time{}, slog.LevelInfo, "", 0) // a zero time is left out
	r.AddAttrs(attrs...)
	if err := slog.NewJSONHandler(&buf, nil).Handle(context.Background(), r); err != nil {
		return nil, false
	}
	const head = `{"level":"INFO","msg":""`
	out, ok := bytes.CutPrefix(buf.Bytes(), []byte(head))
	if !ok {
		return nil, false
	}
	out, ok = bytes.CutSuffix(out, []byte("}\n"))
	return bytes.Clone(out), ok
}

// AppendString appends s to b as a quoted JSON string, escaped exactly as
// log/slog's JSONHandler escapes it (no HTML escaping; invalid UTF-8 as
// U+FFFD; U+2028 and U+2029 escaped), so hand-built members of a LogJSON
// line read like the rest of the log.
func AppendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
