package bot

import (
	"crypto/rand"
	"encoding/base32"
)

var idEncoding = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

// NewID returns prefix followed by 12 random lowercase base32 characters
// (60 bits), e.g. NewID("r-") = "r-7k3q9x0m2c4d". The result is safe in an
// STS RoleSessionName, a Scheduler schedule name and a Slack block id.
func NewID(prefix string) string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	var enc [13]byte       // 64 bits in base32; the alphabet is lowercase already
	idEncoding.Encode(enc[:], b[:])
	return prefix + string(enc[:12])
}
