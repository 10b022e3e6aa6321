package config

import (
	"time"

	"github.com/tokken/tokken/bot/domainjoin"
	"github.com/tokken/tokken/infra/windows"
)

// Domain is the configuration of Windows domain join/leave (/domain).
type Domain struct {
	// Tags is the tag vocabulary shared with the instances' user data:
	// windows.DefaultScheme() with the control key from TOKKEN_DOMAIN_TAG
	// and the status key from TOKKEN_DOMAIN_STATUS_TAG. Load has validated
	// it (domainjoin.TagScheme.Validate).
	Tags domainjoin.TagScheme
	// Channel receives operation messages (TOKKEN_DOMAIN_CHANNEL). Empty:
	// they go to the requester's DM, where approvers cannot see them.
	Channel string
	// Timeout bounds an operation from tagging to outcome, CheckEvery is
	// how often the instance's tags are polled, ApprovalTimeout how long a
	// request may wait for a decision (TOKKEN_DOMAIN_TIMEOUT,
	// TOKKEN_DOMAIN_CHECK_EVERY, TOKKEN_DOMAIN_APPROVAL_TIMEOUT; defaults
	// domainjoin.DefaultTimeout, DefaultCheckEvery, DefaultApprovalTimeout).
	Timeout, CheckEvery, ApprovalTimeout time.Duration
}

// parseDomain reads the domain feature's variables.
func parseDomain(get func(string) string, p *problems) Domain {
	d := Domain{
		Channel:         p.channel("TOKKEN_DOMAIN_CHANNEL", get("TOKKEN_DOMAIN_CHANNEL")),
		Timeout:         domainjoin.DefaultTimeout,
		CheckEvery:      domainjoin.DefaultCheckEvery,
		ApprovalTimeout: domainjoin.DefaultApprovalTimeout,
	}
	for _, v := range []struct {
		name     string
		dst      *time.Duration
		min, max time.Duration
	}{
		{"TOKKEN_DOMAIN_TIMEOUT", &d.Timeout, time.Second, 24 * time.Hour},
		{"TOKKEN_DOMAIN_CHECK_EVERY", &d.CheckEvery, 100 * time.Millisecond, time.Hour},
		{"TOKKEN_DOMAIN_APPROVAL_TIMEOUT", &d.ApprovalTimeout, time.Minute, 7 * 24 * time.Hour},
	} {
		s := get(v.name)
		if s == "" {
			continue
		}
		n, err := time.ParseDuration(s)
		if err != nil || n < v.min || n > v.max {
			p.bad(v.name, "a duration between "+shortDuration(v.min)+" and "+shortDuration(v.max)+" such as "+shortDuration(*v.dst), s)
			continue
		}
		*v.dst = n
	}
	d.Tags = domainTags(get, p)
	return d
}

// domainTags builds the tag scheme and blames the variable that breaks it:
// each key is tried against the defaults on its own first, so an error
// names the variable at fault.
func domainTags(get func(string) string, p *problems) domainjoin.TagScheme {
	control := get("TOKKEN_DOMAIN_TAG")
	if control == "" {
		control = windows.TagControl
	}
	status := get("TOKKEN_DOMAIN_STATUS_TAG")
	if status == "" {
		status = windows.TagStatus
	}
	s := windows.DefaultScheme()
	s.Control = control
	controlErr := s.Validate()
	if controlErr != nil {
		p.bad("TOKKEN_DOMAIN_TAG", "an EC2 tag key usable from instance metadata, distinct from the scheme's other keys ("+controlErr.Error()+")", control)
	}
	s = windows.DefaultScheme()
	s.Status = status
	statusErr := s.Validate()
	if statusErr != nil {
		p.bad("TOKKEN_DOMAIN_STATUS_TAG", "an EC2 tag key usable from instance metadata, distinct from the scheme's other keys ("+statusErr.Error()+")", status)
	}
	s.Control = control
	if controlErr == nil && statusErr == nil && s.Validate() != nil {
		p.bad("TOKKEN_DOMAIN_STATUS_TAG", "a key different from TOKKEN_DOMAIN_TAG", status)
	}
	return s
}
