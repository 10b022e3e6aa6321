package accessui

import (
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/tokken/tokken/bot/access"
)

func idcRequest() access.Request {
	r := baseRequest()
	r.Profile, r.Kind, r.Targets = "prod-admin", access.KindIdentityCenter, nil
	r.IDC = &access.IDCGrant{Account: "111111111111", PermissionSet: "Admin<x>", PermissionSetName: "Admin<x>",
		Identifier: "alice@example.com", SessionDuration: 8 * time.Hour, Checked: true, Granted: true,
		PortalURL: access.PortalLink("https://d-1234567890.awsapps.com/start", "111111111111", "Admin<x>")}
	return r
}

func TestRenderIDC(t *testing.T) {
	r := idcRequest()
	r.State = access.StateActive
	got := rendered(r)
	for _, want := range []string{"*Identity Center* permission set `Admin&lt;x&gt;` on account `111111111111`",
		"Identity Center cannot end portal sessions", "up to 8h after it", "removes the Identity Center assignment"} {
		if !strings.Contains(got, want) {
			t.Errorf("active card lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "Admin<x>") {
		t.Errorf("permission set name not escaped:\n%s", got)
	}
	r.State = access.StateActivating
	if got := rendered(r); !strings.Contains(got, "IAM Identity Center is assigning it") {
		t.Errorf("activating card:\n%s", got)
	}
	r.State, r.IDC.Granted, r.IDC.Preexisting = access.StateActive, false, true
	if got := rendered(r); !strings.Contains(got, "already has this assignment permanently") || strings.Contains(got, "cannot end portal sessions") {
		t.Errorf("pre-existing card:\n%s", got)
	}

	tell := RenderTell(idcRequest(), access.ActActive, tokyo).Text
	link := "<https://d-1234567890.awsapps.com/start/#/console?account_id=111111111111&amp;role_name=Admin%3Cx%3E|open account 111111111111 as Admin&lt;x&gt; in the AWS access portal>"
	for _, want := range []string{link, "up to 8h after it", "is active until"} {
		if !strings.Contains(tell, want) {
			t.Errorf("active DM lacks %q:\n%s", want, tell)
		}
	}
	pre := idcRequest()
	pre.IDC.Preexisting, pre.IDC.Granted = true, false
	if tell := RenderTell(pre, access.ActActive, tokyo).Text; !strings.Contains(tell, "you already have this access permanently") || strings.Contains(tell, "portal.") {
		t.Errorf("pre-existing DM:\n%s", tell)
	}
}

func TestRequestFormAccount(t *testing.T) {
	idc := []Choice{{Profile: access.Profile{Name: "prod-admin", Kind: access.KindIdentityCenter, MaxDuration: time.Hour,
		IDC: access.IDCSelector{Accounts: []string{"111111111111", "222222222222"}, PermissionSet: "Admin"}}}, choices[1]}
	base := func() map[string]slack.BlockAction {
		return map[string]slack.BlockAction{blockProfile: sel("prod-admin"), blockDuration: sel("30m"), blockReason: {Value: "kms"}}
	}
	tests := []struct {
		name   string
		change func(map[string]slack.BlockAction)
		errs   map[string]string
	}{
		{"account", func(v map[string]slack.BlockAction) { v[blockAccount] = sel("222222222222") }, nil},
		{"none of several", func(map[string]slack.BlockAction) {}, map[string]string{blockAccount: "Pick the account: prod-admin offers 111111111111, 222222222222"}},
		{"not offered", func(v map[string]slack.BlockAction) { v[blockAccount] = sel("333333333333") }, map[string]string{blockAccount: "does not offer account 333333333333"}},
		{"forged", func(v map[string]slack.BlockAction) { v[blockAccount] = sel("<!here>") }, map[string]string{blockAccount: "not an AWS account id"}},
		{"sts with an account", func(v map[string]slack.BlockAction) {
			v[blockProfile], v[blockAccount] = sel("prod-readonly"), sel("111111111111")
		}, map[string]string{blockAccount: "not an identity-center profile"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := base()
			tt.change(v)
			f, errs := parseRequestForm(form(v))
			checkForm(f, idc, errs)
			if len(errs) != len(tt.errs) {
				t.Fatalf("errors %v, want %v", errs, tt.errs)
			}
			for b, want := range tt.errs {
				if !strings.Contains(errs[b], want) {
					t.Errorf("%s: %q, want %q", b, errs[b], want)
				}
			}
		})
	}
	m := RequestModal(idc)
	var ids []string
	for _, b := range m.Blocks.BlockSet {
		ids = append(ids, b.ID())
	}
	if got := strings.Join(ids, ","); got != "profile,targets,account,duration,reason,ticket" {
		t.Errorf("blocks %s", got)
	}
	s := m.Blocks.BlockSet[2].(*slack.InputBlock).Element.(*slack.SelectBlockElement)
	if len(s.Options) != 2 || s.Options[1].Value != "222222222222" || !strings.Contains(s.Options[1].Text.Text, "prod-admin") {
		t.Errorf("account options %+v", s.Options)
	}
}

func TestProfileListIDC(t *testing.T) {
	got := RenderProfileList([]Choice{{Profile: access.Profile{Name: "prod-admin", Kind: access.KindIdentityCenter, MaxDuration: time.Hour, Approvals: 1,
		IDC: access.IDCSelector{Accounts: []string{"111111111111", "222222222222"}, PermissionSet: "AdministratorAccess"}}}})
	if want := "• `prod-admin` (1 approval(s), up to 1h, Identity Center AdministratorAccess on account 111111111111 or 222222222222)"; !strings.Contains(got, want) {
		t.Errorf("profile list %q lacks %q", got, want)
	}
}
