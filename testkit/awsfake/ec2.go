package awsfake

import (
	"encoding/xml"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// EC2 fakes the EC2 instance and tag APIs (EC2 query protocol, XML).
// Instances are test state: add them with [EC2.AddInstance], change their
// tags as an instance's own script would with [EC2.SetTag].
type EC2 struct {
	f         *Fake
	instances map[string]*instance // guarded by f.mu
	reboots   map[string]int       // guarded by f.mu
}

// Instance describes a fake EC2 instance.
type Instance struct {
	// ID is the instance id, i-<8 or 17 hex digits>.
	ID string
	// Name, when set, becomes the "Name" tag.
	Name string
	Tags map[string]string
	// State is the instance state name; "running" when empty.
	State string
	// Platform is "windows" for Windows instances, "" for Linux.
	Platform     string
	InstanceType string // "t3.medium" when empty
	PrivateIP    string
	LaunchTime   time.Time
}

type instance struct {
	Instance
	order int // insertion order, for stable listing
}

// instanceStateCodes are EC2's state codes by name.
func instanceStateCode(name string) int {
	switch name {
	case "pending":
		return 0
	case "running":
		return 16
	case "shutting-down":
		return 32
	case "terminated":
		return 48
	case "stopping":
		return 64
	case "stopped":
		return 80
	}
	return 16
}

var instanceIDPattern = regexp.MustCompile(`^i-(?:[0-9a-f]{8}|[0-9a-f]{17})$`)

// AddInstance adds (or replaces) an instance. An invalid ID fails the test.
func (e *EC2) AddInstance(in Instance) {
	e.f.tb.Helper()
	if !instanceIDPattern.MatchString(in.ID) {
		e.f.tb.Fatalf("awsfake: AddInstance: malformed instance id %q (want i- and 8 or 17 hex digits)", in.ID)
	}
	tags := maps.Clone(in.Tags)
	if tags == nil {
		tags = map[string]string{}
	}
	if in.Name != "" {
		tags["Name"] = in.Name
	}
	in.Tags = tags
	if in.State == "" {
		in.State = "running"
	}
	if in.InstanceType == "" {
		in.InstanceType = "t3.medium"
	}
	if in.LaunchTime.IsZero() {
		in.LaunchTime = e.f.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	}
	e.f.update(func() { e.instances[in.ID] = &instance{Instance: in, order: len(e.instances)} })
}

// SetTag sets one tag on an instance, as a script on the instance would.
func (e *EC2) SetTag(id, key, value string) {
	e.f.tb.Helper()
	e.f.update(func() {
		if in, ok := e.instances[id]; ok {
			in.Tags[key] = value
			return
		}
		e.f.tb.Errorf("awsfake: SetTag: no instance %s", id)
	})
}

// SetState sets an instance's state name ("stopped", "running", ...).
func (e *EC2) SetState(id, state string) {
	e.f.update(func() {
		if in, ok := e.instances[id]; ok {
			in.State = state
		}
	})
}

// Tags returns a copy of an instance's tags (nil for an unknown instance).
func (e *EC2) Tags(id string) map[string]string {
	e.f.mu.Lock()
	defer e.f.mu.Unlock()
	if in, ok := e.instances[id]; ok {
		return maps.Clone(in.Tags)
	}
	return nil
}

// Instance returns a copy of an instance.
func (e *EC2) Instance(id string) (Instance, bool) {
	e.f.mu.Lock()
	defer e.f.mu.Unlock()
	in, ok := e.instances[id]
	if !ok {
		return Instance{}, false
	}
	out := in.Instance
	out.Tags = maps.Clone(in.Tags)
	return out, true
}

// RebootCount returns how many times RebootInstances rebooted the instance.
func (e *EC2) RebootCount(id string) int {
	e.f.mu.Lock()
	defer e.f.mu.Unlock()
	return e.reboots[id]
}

// lookupLocked resolves instance ids like EC2: a malformed id is
// InvalidInstanceID.Malformed, unknown ones InvalidInstanceID.NotFound
// (listing all of them). f.mu must be held.
func (e *EC2) lookupLocked(ids []string) ([]*instance, *apiError) {
	var out []*instance
	var missing []string
	for _, id := range ids {
		if !instanceIDPattern.MatchString(id) {
			return nil, clientErr("InvalidInstanceID.Malformed", "Invalid id: %q", id)
		}
		in, ok := e.instances[id]
		if !ok {
			missing = append(missing, id)
			continue
		}
		out = append(out, in)
	}
	switch len(missing) {
	case 0:
		return out, nil
	case 1:
		return nil, clientErr("InvalidInstanceID.NotFound", "The instance ID '%s' does not exist", missing[0])
	default:
		return nil, clientErr("InvalidInstanceID.NotFound", "The instance IDs '%s' do not exist", strings.Join(missing, ", "))
	}
}

type ec2Filter struct {
	name   string
	values []string
}

// matches reports whether in passes the filter; values are ORed and may
// use EC2's * and ? wildcards.
func (flt ec2Filter) matches(in *instance) bool {
	var candidates []string
	switch {
	case flt.name == "instance-id":
		candidates = []string{in.ID}
	case flt.name == "instance-state-name":
		candidates = []string{in.State}
	case flt.name == "platform":
		candidates = []string{in.Platform}
	case flt.name == "tag-key":
		candidates = slices.Collect(maps.Keys(in.Tags))
	case flt.name == "tag-value":
		candidates = slices.Collect(maps.Values(in.Tags))
	case strings.HasPrefix(flt.name, "tag:"):
		v, ok := in.Tags[strings.TrimPrefix(flt.name, "tag:")]
		if !ok {
			return false
		}
		candidates = []string{v}
	}
	for _, c := range candidates {
		for _, pat := range flt.values {
			if wildcardMatch(pat, c) {
				return true
			}
		}
	}
	return false
}

// wildcardMatch matches s against an EC2 filter value where * is any run of
// characters and ? any single character.
func wildcardMatch(pat, s string) bool {
	p, r := []rune(pat), []rune(s)
	// Classic iterative glob with backtracking on the last star.
	pi, si, star, mark := 0, 0, -1, 0
	for si < len(r) {
		switch {
		case pi < len(p) && p[pi] == '*': // before the literal case: a '*' in s is not a wildcard
			star, mark = pi, si
			pi++
		case pi < len(p) && (p[pi] == '?' || p[pi] == r[si]):
			pi++
			si++
		case star >= 0:
			pi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

type ec2Tag struct {
	Key   string `xml:"key"`
	Value string `xml:"value"`
}

type ec2Instance struct {
	InstanceID    string `xml:"instanceId"`
	ImageID       string `xml:"imageId"`
	InstanceState struct {
		Code int    `xml:"code"`
		Name string `xml:"name"`
	} `xml:"instanceState"`
	PrivateIPAddress string   `xml:"privateIpAddress,omitempty"`
	InstanceType     string   `xml:"instanceType"`
	LaunchTime       string   `xml:"launchTime"`
	Platform         string   `xml:"platform,omitempty"`
	PlatformDetails  string   `xml:"platformDetails"`
	TagSet           []ec2Tag `xml:"tagSet>item"`
}

type ec2Reservation struct {
	ReservationID string        `xml:"reservationId"`
	OwnerID       string        `xml:"ownerId"`
	Instances     []ec2Instance `xml:"instancesSet>item"`
}

type describeInstancesResponse struct {
	XMLName xml.Name `xml:"DescribeInstancesResponse"`
	ec2Meta
	Reservations []ec2Reservation `xml:"reservationSet>item"`
	NextToken    string           `xml:"nextToken,omitempty"`
}

func (e *EC2) describeInstances(r *request) (any, *apiError) {
	ids := queryList(r.form, "InstanceId", "")
	var filters []ec2Filter
	for i := 1; ; i++ {
		name, ok := r.form[fmt.Sprintf("Filter.%d.Name", i)]
		if !ok {
			break
		}
		flt := ec2Filter{name: name[0], values: queryList(r.form, fmt.Sprintf("Filter.%d.Value", i), "")}
		switch {
		case flt.name == "instance-id", flt.name == "instance-state-name", flt.name == "platform",
			flt.name == "tag-key", flt.name == "tag-value", strings.HasPrefix(flt.name, "tag:"):
		default:
			return nil, clientErr("InvalidParameterValue", "The filter '%s' is invalid", flt.name)
		}
		filters = append(filters, flt)
	}
	maxResults := 0
	if v := r.form.Get("MaxResults"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 5 || n > 1000 {
			return nil, clientErr("InvalidParameterValue", "Value ( %s ) for parameter maxResults is invalid. Expecting a value between 5 and 1000.", v)
		}
		if len(ids) > 0 {
			return nil, clientErr("InvalidParameterCombination", "The parameter instancesSet cannot be used with the parameter maxResults")
		}
		maxResults = n
	}
	start := 0
	if tok := r.form.Get("NextToken"); tok != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(tok, "fake-token-"))
		if err != nil || !strings.HasPrefix(tok, "fake-token-") || n < 0 {
			return nil, clientErr("InvalidParameterValue", "Invalid value '%s' for nextToken", tok)
		}
		start = n
	}

	e.f.mu.Lock()
	var selected []*instance
	if len(ids) > 0 {
		found, aerr := e.lookupLocked(ids)
		if aerr != nil {
			e.f.mu.Unlock()
			return nil, aerr
		}
		selected = found
	} else {
		selected = slices.Collect(maps.Values(e.instances))
		slices.SortFunc(selected, func(a, b *instance) int { return a.order - b.order })
	}
	out := &describeInstancesResponse{}
	matched := 0
	for _, in := range selected {
		ok := true
		for _, flt := range filters {
			if !flt.matches(in) {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		matched++
		if matched <= start {
			continue
		}
		if maxResults > 0 && len(out.Reservations) == maxResults {
			out.NextToken = fmt.Sprintf("fake-token-%d", matched-1)
			break
		}
		out.Reservations = append(out.Reservations, ec2Reservation{
			ReservationID: "r-" + in.ID[2:],
			OwnerID:       AccountID,
			Instances:     []ec2Instance{toEC2Instance(in)},
		})
	}
	e.f.mu.Unlock()
	return out, nil
}

func toEC2Instance(in *instance) ec2Instance {
	x := ec2Instance{
		InstanceID:       in.ID,
		ImageID:          "ami-0123456789abcdef0",
		PrivateIPAddress: in.PrivateIP,
		InstanceType:     in.InstanceType,
		LaunchTime:       in.LaunchTime.UTC().Format("2006-01-02T15:04:05.000Z"),
		Platform:         in.Platform,
		PlatformDetails:  "Linux/UNIX",
	}
	if in.Platform == "windows" {
		x.PlatformDetails = "Windows"
	}
	x.InstanceState.Name = in.State
	x.InstanceState.Code = instanceStateCode(in.State)
	keys := slices.Sorted(maps.Keys(in.Tags))
	for _, k := range keys {
		x.TagSet = append(x.TagSet, ec2Tag{Key: k, Value: in.Tags[k]})
	}
	return x
}

type ec2ReturnResponse struct {
	XMLName xml.Name
	ec2Meta
	Return bool `xml:"return"`
}

// tagTargets resolves CreateTags/DeleteTags resource ids; only instances
// are faked.
func (e *EC2) tagTargetsLocked(r *request) ([]*instance, *apiError) {
	ids := queryList(r.form, "ResourceId", "")
	if len(ids) == 0 {
		return nil, clientErr("MissingParameter", "The request must contain the parameter resourceIdSet")
	}
	for _, id := range ids {
		if !strings.HasPrefix(id, "i-") {
			return nil, clientErr("InvalidID", "The ID '%s' is not valid (awsfake fakes instance tags only)", id)
		}
	}
	return e.lookupLocked(ids)
}

func (e *EC2) createTags(r *request) (any, *apiError) {
	type kv struct{ k, v string }
	var tags []kv
	for i := 1; ; i++ {
		k, ok := r.form[fmt.Sprintf("Tag.%d.Key", i)]
		if !ok {
			break
		}
		key := k[0]
		if strings.HasPrefix(strings.ToLower(key), "aws:") {
			return nil, clientErr("InvalidParameterValue", "Tag keys starting with 'aws:' are reserved for internal use")
		}
		if key == "" || len(key) > 128 {
			return nil, clientErr("InvalidParameterValue", "Tag key must be 1 to 128 characters, got %q", key)
		}
		v := r.form.Get(fmt.Sprintf("Tag.%d.Value", i))
		if len(v) > 256 {
			return nil, clientErr("InvalidParameterValue", "Tag value exceeds the maximum length of 256 characters")
		}
		tags = append(tags, kv{key, v})
	}
	if len(tags) == 0 {
		return nil, clientErr("MissingParameter", "The request must contain the parameter tagSet")
	}
	var aerr *apiError
	e.f.update(func() {
		var targets []*instance
		targets, aerr = e.tagTargetsLocked(r)
		if aerr != nil {
			return
		}
		for _, in := range targets {
			if len(in.Tags)+len(tags) > 50 {
				aerr = clientErr("TagLimitExceeded", "The maximum number of tags for resource %s has been reached.", in.ID)
				return
			}
		}
		for _, in := range targets {
			for _, t := range tags {
				in.Tags[t.k] = t.v
			}
		}
	})
	if aerr != nil {
		return nil, aerr
	}
	return &ec2ReturnResponse{XMLName: xml.Name{Local: "CreateTagsResponse"}, Return: true}, nil
}

func (e *EC2) deleteTags(r *request) (any, *apiError) {
	type tagSel struct {
		k        string
		v        string
		hasValue bool
	}
	var sel []tagSel
	for i := 1; ; i++ {
		k, ok := r.form[fmt.Sprintf("Tag.%d.Key", i)]
		if !ok {
			break
		}
		v, hasValue := r.form[fmt.Sprintf("Tag.%d.Value", i)]
		t := tagSel{k: k[0], hasValue: hasValue}
		if hasValue {
			t.v = v[0]
		}
		sel = append(sel, t)
	}
	var aerr *apiError
	e.f.update(func() {
		var targets []*instance
		targets, aerr = e.tagTargetsLocked(r)
		if aerr != nil {
			return
		}
		for _, in := range targets {
			if len(sel) == 0 { // no Tag: delete every user tag
				for k := range in.Tags {
					if !strings.HasPrefix(k, "aws:") {
						delete(in.Tags, k)
					}
				}
				continue
			}
			for _, t := range sel {
				if cur, ok := in.Tags[t.k]; ok && (!t.hasValue || cur == t.v) {
					delete(in.Tags, t.k)
				}
			}
		}
	})
	if aerr != nil {
		return nil, aerr
	}
	return &ec2ReturnResponse{XMLName: xml.Name{Local: "DeleteTagsResponse"}, Return: true}, nil
}

func (e *EC2) rebootInstances(r *request) (any, *apiError) {
	ids := queryList(r.form, "InstanceId", "")
	if len(ids) == 0 {
		return nil, clientErr("MissingParameter", "The request must contain the parameter InstanceId")
	}
	var aerr *apiError
	e.f.update(func() {
		var targets []*instance
		targets, aerr = e.lookupLocked(ids)
		if aerr != nil {
			return
		}
		for _, in := range targets {
			if in.State != "running" {
				aerr = clientErr("IncorrectState", "The instance '%s' is not in a state from which it can be rebooted.", in.ID)
				return
			}
		}
		for _, in := range targets {
			e.reboots[in.ID]++
		}
	})
	if aerr != nil {
		return nil, aerr
	}
	return &ec2ReturnResponse{XMLName: xml.Name{Local: "RebootInstancesResponse"}, Return: true}, nil
}
