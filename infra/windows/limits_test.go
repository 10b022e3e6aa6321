package windows

import (
	"regexp"
	"strings"
	"testing"
)

// The patterns Config.Validate used with bounded repeats, before length
// checks replaced those; compiled here, in the tests only.
var (
	boundedSecretIDRE = regexp.MustCompile(`^[A-Za-z0-9/_+=.@:-]{1,1000}$`)
	boundedIMDSKeyRE  = regexp.MustCompile(`^[A-Za-z0-9+\-=.,_:@]{1,128}$`)
)

func TestValidateSecretLimits(t *testing.T) {
	cases := []struct {
		name      string
		secretTag string
		secretID  string
		// bounded is whether the bounded patterns accept the tag and id;
		// want is whether Validate does. They differ only where Validate
		// is stricter on purpose (see below).
		bounded, want bool
	}{
		{"defaults", TagSecret, "", true, true},
		{"secret name", TagSecret, "ad/join-creds", true, true},
		{"secret ARN", TagSecret, "arn:aws:secretsmanager:us-east-1:123456789012:secret:ad-join-AbCdEf", true, true},
		{"longest secret id", TagSecret, strings.Repeat("s", maxSecretID), true, true},
		{"secret id too long", TagSecret, strings.Repeat("s", maxSecretID+1), false, false},
		{"secret id with a space", TagSecret, "ad join", false, false},
		{"secret id with a quote", TagSecret, "ad'join", false, false},
		{"secret id with a newline", TagSecret, "ad-join\n", false, false},
		{"secret id not ASCII", TagSecret, "ad-jöin", false, false},
		{"longest secret tag", strings.Repeat("t", 128), "", true, true},
		{"secret tag too long", strings.Repeat("t", 129), "", false, false},
		{"empty secret tag", "", "", false, false},
		{"secret tag with a slash", "domain/secret", "", false, false},
		{"secret tag with a newline", "domain-secret\n", "", false, false},
		// Instance metadata cannot expose these keys, so the script could
		// never read the secret id from them: refused like the scheme's
		// keys (domainjoin.ValidTagKey), although the bounded pattern
		// alone let them through.
		{"secret tag .", ".", "", true, false},
		{"secret tag ..", "..", "", true, false},
		{"secret tag _index", "_index", "", true, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.SecretTag, cfg.SecretID = c.secretTag, c.secretID
			err := cfg.Validate()
			if got := err == nil; got != c.want {
				t.Errorf("Validate(secret tag %.40q, secret id %.40q) = %v, want accepted %v", c.secretTag, c.secretID, err, c.want)
			}
			old := boundedIMDSKeyRE.MatchString(c.secretTag) && (c.secretID == "" || boundedSecretIDRE.MatchString(c.secretID))
			if old != c.bounded {
				t.Errorf("the bounded patterns say %v, the table %v: the table is wrong", old, c.bounded)
			}
			if err != nil && !strings.Contains(err.Error(), "secret") {
				t.Errorf("error %q does not say which setting is wrong", err)
			}
		})
	}
}
