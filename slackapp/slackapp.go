// Package slackapp holds tokken's Slack app manifests, the files a team
// pastes into https://api.slack.com/apps to create the app in one step:
// manifest.yaml for Slack traffic over HTTPS (the deployed stack) and
// manifest.socket-mode.yaml for local development over Socket Mode.
//
// The manifests are embedded so the wiring can check at test time that the
// slash commands it registers are the ones the app declares (Commands), and
// so a command can print the HTTPS manifest with the stack's URL filled in
// (Render). docs/slack-app.md explains every scope; the tests here keep the
// two variants, tokken's HTTP routes and that document in step.
package slackapp

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// Placeholder is the base URL the HTTPS manifest uses for tokken's routes.
// Replace it with the stack's SlackRequestURL output (see Render).
const Placeholder = "https://TOKKEN_HOST/"

// Route paths the manifests point Slack at; handlers/httpapi serves them.
const (
	RouteCommands     = "/slack/commands"
	RouteInteractions = "/slack/interactions"
	RouteOptions      = "/slack/options"
	RouteEvents       = "/slack/events"
)

// The embedded files are read-only; HTTPManifest and SocketModeManifest hand
// out copies.
var (
	//go:embed manifest.yaml
	httpManifest string
	//go:embed manifest.socket-mode.yaml
	socketModeManifest string
)

// HTTPManifest returns manifest.yaml as written (URLs on Placeholder).
func HTTPManifest() []byte { return []byte(httpManifest) }

// SocketModeManifest returns manifest.socket-mode.yaml.
func SocketModeManifest() []byte { return []byte(socketModeManifest) }

// Render returns manifest.yaml with Placeholder replaced by baseURL, the
// stack's SlackRequestURL output (an https URL with a host and no query;
// a missing trailing "/" is added).
func Render(baseURL string) ([]byte, error) {
	u, err := url.Parse(baseURL)
	switch {
	case err != nil:
		return nil, fmt.Errorf("slack request url %q: %w", baseURL, err)
	case u.Scheme != "https" || u.Host == "":
		return nil, fmt.Errorf("slack request url %q: want https://host/ (Slack only calls https URLs)", baseURL)
	case u.RawQuery != "" || u.Fragment != "" || u.User != nil:
		return nil, fmt.Errorf("slack request url %q: want no query, fragment or credentials", baseURL)
	}
	if !strings.HasSuffix(baseURL, "/") {
		baseURL += "/"
	}
	return bytes.ReplaceAll([]byte(httpManifest), []byte(Placeholder), []byte(baseURL)), nil
}

// Manifest is the part of Slack's app manifest schema tokken uses. Parse
// rejects fields it does not know, so a misspelt field fails a test here
// instead of being ignored by Slack.
type Manifest struct {
	Metadata           Metadata           `yaml:"_metadata"`
	DisplayInformation DisplayInformation `yaml:"display_information"`
	Features           Features           `yaml:"features"`
	OAuthConfig        OAuthConfig        `yaml:"oauth_config"`
	Settings           Settings           `yaml:"settings"`
}

// Metadata selects the manifest schema version.
type Metadata struct {
	MajorVersion int `yaml:"major_version"`
	MinorVersion int `yaml:"minor_version"`
}

// DisplayInformation is how the app appears in Slack.
type DisplayInformation struct {
	Name            string `yaml:"name"`
	Description     string `yaml:"description"`
	BackgroundColor string `yaml:"background_color"`
	LongDescription string `yaml:"long_description"`
}

// Features are the app's bot user, App Home and slash commands.
type Features struct {
	AppHome       *AppHome       `yaml:"app_home"`
	BotUser       *BotUser       `yaml:"bot_user"`
	SlashCommands []SlashCommand `yaml:"slash_commands"`
}

// AppHome configures the app's Home and Messages tabs.
type AppHome struct {
	HomeTabEnabled             bool `yaml:"home_tab_enabled"`
	MessagesTabEnabled         bool `yaml:"messages_tab_enabled"`
	MessagesTabReadOnlyEnabled bool `yaml:"messages_tab_read_only_enabled"`
}

// BotUser is the app's bot identity.
type BotUser struct {
	DisplayName  string `yaml:"display_name"`
	AlwaysOnline bool   `yaml:"always_online"`
}

// SlashCommand is one slash command. URL is empty in Socket Mode.
// ShouldEscape is a pointer so a test can tell "false" from "not set".
type SlashCommand struct {
	Command      string `yaml:"command"`
	URL          string `yaml:"url"`
	Description  string `yaml:"description"`
	UsageHint    string `yaml:"usage_hint"`
	ShouldEscape *bool  `yaml:"should_escape"`
}

// OAuthConfig holds the requested scopes.
type OAuthConfig struct {
	Scopes       Scopes   `yaml:"scopes"`
	RedirectURLs []string `yaml:"redirect_urls"`
}

// Scopes are the bot (and user) token scopes the app asks for.
type Scopes struct {
	Bot  []string `yaml:"bot"`
	User []string `yaml:"user"`
}

// Settings are interactivity, events and delivery settings.
type Settings struct {
	EventSubscriptions   *EventSubscriptions `yaml:"event_subscriptions"`
	Interactivity        *Interactivity      `yaml:"interactivity"`
	OrgDeployEnabled     *bool               `yaml:"org_deploy_enabled"`
	SocketModeEnabled    *bool               `yaml:"socket_mode_enabled"`
	TokenRotationEnabled *bool               `yaml:"token_rotation_enabled"`
}

// EventSubscriptions are the Events API settings.
type EventSubscriptions struct {
	RequestURL string   `yaml:"request_url"`
	BotEvents  []string `yaml:"bot_events"`
	UserEvents []string `yaml:"user_events"`
}

// Interactivity routes button clicks, modal submissions and external
// select option requests.
type Interactivity struct {
	IsEnabled             bool   `yaml:"is_enabled"`
	RequestURL            string `yaml:"request_url"`
	MessageMenuOptionsURL string `yaml:"message_menu_options_url"`
}

// Parse decodes a manifest, rejecting unknown fields and trailing documents.
func Parse(data []byte) (Manifest, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		return Manifest{}, fmt.Errorf("parse slack app manifest: %w", err)
	}
	var extra any
	switch err := dec.Decode(&extra); {
	case err == nil:
		return Manifest{}, errors.New("parse slack app manifest: more than one YAML document")
	case !errors.Is(err, io.EOF):
		return Manifest{}, fmt.Errorf("parse slack app manifest: after the first document: %w", err)
	}
	return m, nil
}

// Commands returns the manifest's slash commands ("/access", …), sorted, to
// compare with the commands the wiring registers (router.Router.Commands).
func (m Manifest) Commands() []string {
	out := make([]string, 0, len(m.Features.SlashCommands))
	for _, c := range m.Features.SlashCommands {
		out = append(out, c.Command)
	}
	slices.Sort(out)
	return out
}
