package instindex

// Internals the external tests reach (renew_test.go): refresh at a given
// time, and the renewal point of an instance.
var (
	RefreshAt   = refresh
	RenewWithin = renewWithin
)
