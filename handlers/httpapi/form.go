package httpapi

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"

	"github.com/slack-go/slack"

	"github.com/tokken/tokken/handlers/slacksig"
)

// Slack posts slash commands and interactions as
// application/x-www-form-urlencoded bodies. The functions here decode them
// as net/http's ParseForm and slack-go's SlashCommandParse do — the same
// separators, unescaping, first value of a repeated key, and errors — but
// in one pass over the body into the fields tokken reads, without building
// a url.Values map (the form was a tenth of a slash command's CPU).

// Errors of url.ParseQuery's: ';' as a separator, and more parameters
// than it accepts (maxFormParams, its default limit).
var (
	errSemicolon     = errors.New("invalid semicolon separator in query")
	errTooManyParams = errors.New("number of URL query parameters exceeded limit")
)

const maxFormParams = 10000

// formBody returns the body of a form POST, or nil when the request is not
// form-encoded (ParseForm leaves PostForm empty then). The bytes are the
// caller's to modify: the verifier's buffer when the body came through
// slacksig.Verifier's middleware, a copy otherwise.
func formBody(r *http.Request) ([]byte, error) {
	if r.Body == nil {
		return nil, errors.New("missing form body")
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
		mt, _, err := mime.ParseMediaType(ct)
		if ct == "" {
			mt, err = "application/octet-stream", nil
		}
		if err != nil {
			return nil, err
		}
		if mt != "application/x-www-form-urlencoded" {
			return nil, nil
		}
	}
	body, err := requestBody(r)
	if err != nil {
		return nil, fmt.Errorf("read form: %w", err)
	}
	return body, nil
}

// requestBody returns r's body, the caller's to modify: the verifier's
// buffer when the body came through slacksig.Verifier's middleware (no
// second copy), else what is read.
func requestBody(r *http.Request) ([]byte, error) {
	if verified, ok := r.Body.(*slacksig.Body); ok {
		return verified.Take(), nil
	}
	return io.ReadAll(r.Body)
}

// eachFormPair calls f with each unescaped key and still-escaped value of
// a form body, in order, as url.ParseQuery splits it; f unescapes only the
// values it keeps (key aliases body when nothing was escaped). A part with
// a ';' is skipped and reported as ParseQuery does, after the other parts
// were passed on (a ';' anywhere is the error reported, else the first bad
// escape); a body of more parameters than ParseQuery takes is refused
// whole.
func eachFormPair(body []byte, f func(key, rawValue []byte) error) error {
	if bytes.Count(body, []byte{'&'})+1 > maxFormParams {
		return errTooManyParams
	}
	var first error
	for len(body) > 0 {
		var part []byte
		part, body, _ = bytes.Cut(body, []byte{'&'})
		if bytes.IndexByte(part, ';') >= 0 {
			first = errSemicolon // overrides an earlier error, as in ParseQuery
			continue
		}
		if len(part) == 0 {
			continue
		}
		rawKey, rawValue, _ := bytes.Cut(part, []byte{'='})
		key, err := unescapeQuery(rawKey)
		if err == nil {
			err = f(key, rawValue)
		}
		if err != nil && first == nil {
			first = err
		}
	}
	return first
}

// unescapeQuery is url.QueryUnescape over bytes, in place: "+" is a space
// and %XX a byte, written over s in one pass (the result is s's prefix,
// never longer). An escape that is not two hex digits gets the error
// url.QueryUnescape gives, for the same first bad escape; s's contents are
// then unspecified. Form bodies are the request's own buffer (see
// formBody), so unescaping allocates nothing.
func unescapeQuery(s []byte) ([]byte, error) {
	w := 0
	for i := 0; i < len(s); w++ {
		switch c := s[i]; c {
		case '%':
			if i+2 >= len(s) || hexValue[s[i+1]]|hexValue[s[i+2]] > 0xf {
				// The bytes from i on are as they were: w <= i.
				return nil, url.EscapeError(s[i:min(i+3, len(s))])
			}
			s[w] = hexValue[s[i+1]]<<4 | hexValue[s[i+2]]
			i += 3
		case '+':
			s[w] = ' '
			i++
		default:
			s[w] = c
			i++
		}
	}
	return s[:w], nil
}

// hexValue maps a hexadecimal digit to its value and any other byte to
// 0xff: one lookup per digit, where a JSON payload has an escape every few
// bytes. Read only.
var hexValue = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for c := byte('0'); c <= '9'; c++ {
		t[c] = c - '0'
	}
	for c := byte('a'); c <= 'f'; c++ {
		t[c], t[c-'a'+'A'] = c-'a'+10, c-'a'+10
	}
	return t
}()

// parseSlashCommand reads a slash command form from r as
// slack.SlashCommandParse does (it also reports ssl_check=1, Slack's
// certificate probe). A body that is not form-encoded yields an empty
// command, as with ParseForm.
func parseSlashCommand(r *http.Request) (cmd slack.SlashCommand, sslCheck bool, err error) {
	body, err := formBody(r)
	if err != nil {
		return cmd, false, err
	}
	// The values are gathered in one buffer and made one string, which the
	// fields share: one allocation rather than one per field.
	var (
		store [1024]byte
		buf   = store[:0]
		spans [numSlashFields][2]int
		seen  uint32 // the first value of a key wins, as with url.Values.Get
	)
	err = eachFormPair(body, func(key, raw []byte) error {
		v, err := unescapeQuery(raw) // every value must unescape, as in ParseQuery
		if err != nil {
			return err
		}
		if i := slashField(key); i >= 0 && seen&(1<<i) == 0 {
			seen |= 1 << i
			spans[i] = [2]int{len(buf), len(buf) + len(v)}
			buf = append(buf, v...)
		}
		return nil
	})
	all := string(buf)
	var values [numSlashFields]string
	for i, sp := range spans {
		values[i] = all[sp[0]:sp[1]]
	}
	return slack.SlashCommand{
		Token: values[fToken], TeamID: values[fTeamID], TeamDomain: values[fTeamDomain],
		EnterpriseID: values[fEnterpriseID], EnterpriseName: values[fEnterpriseName],
		IsEnterpriseInstall: values[fEnterpriseInstall] == "true",
		ChannelID:           values[fChannelID], ChannelName: values[fChannelName],
		UserID: values[fUserID], UserName: values[fUserName], Command: values[fCommand], Text: values[fText],
		ResponseURL: values[fResponseURL], TriggerID: values[fTriggerID], APIAppID: values[fAPIAppID],
	}, values[fSSLCheck] == "1", err
}

// The form fields of a slash command, in slashField's numbering.
const (
	fToken = iota
	fTeamID
	fTeamDomain
	fEnterpriseID
	fEnterpriseName
	fEnterpriseInstall
	fChannelID
	fChannelName
	fUserID
	fUserName
	fCommand
	fText
	fResponseURL
	fTriggerID
	fAPIAppID
	fSSLCheck
	numSlashFields
)

// slashField numbers a slash command's form key (-1: not read).
func slashField(key []byte) int {
	switch string(key) {
	case "token":
		return fToken
	case "team_id":
		return fTeamID
	case "team_domain":
		return fTeamDomain
	case "enterprise_id":
		return fEnterpriseID
	case "enterprise_name":
		return fEnterpriseName
	case "is_enterprise_install":
		return fEnterpriseInstall
	case "channel_id":
		return fChannelID
	case "channel_name":
		return fChannelName
	case "user_id":
		return fUserID
	case "user_name":
		return fUserName
	case "command":
		return fCommand
	case "text":
		return fText
	case "response_url":
		return fResponseURL
	case "trigger_id":
		return fTriggerID
	case "api_app_id":
		return fAPIAppID
	case "ssl_check":
		return fSSLCheck
	}
	return -1
}

// interactionPayload reads the "payload" field of an interaction form from
// r (its first value, as ParseForm's PostForm.Get), unescaped.
func interactionPayload(r *http.Request) ([]byte, error) {
	body, err := formBody(r)
	if err != nil {
		return nil, err
	}
	var payload []byte
	found := false
	err = eachFormPair(body, func(key, raw []byte) error {
		v, err := unescapeQuery(raw)
		if err == nil && !found && string(key) == "payload" {
			payload, found = v, true
		}
		return err
	})
	return payload, err
}
