// Package accessui is the Slack face of access requests (bot/access): the
// /access slash command and its request modal, the buttons on the approver
// message and in the requester's DM (Approve, Deny, Revoke, Reviewed, I'm
// done, Extend), the external select that searches instances, and the
// access.Notifier over the Slack Web API (principals come from
// infra/slackdir).
//
// What runs where: a command or click is verified and acknowledged by
// handlers/httpapi; this package then parses it and either answers at once
// (help, mistakes, list), opens a modal inside the acknowledgement (the
// trigger_id lives three seconds), or calls the access.Service, whose
// synchronous methods only touch the store, the policy set and Slack. New
// requests are submitted by a job on the worker, because checking instances
// needs EC2; the answer follows through the command's response_url or a DM.
// Refusals are private (ephemeral) and say why, using access.Explain.
package accessui

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/bot/access"
	"github.com/tokken/tokken/handlers/mrkdwn"
	"github.com/tokken/tokken/handlers/router"
	"github.com/tokken/tokken/infra/slackapi"
	"github.com/tokken/tokken/infra/slackdir"
)

// Namespace routes this package's interactions and options (router.Router).
const Namespace = "access"

// Action ids of the buttons. Every button's value is the request id only:
// state lives in the store, never in the message.
const (
	ActionApprove          = "access:approve"
	ActionDeny             = "access:deny" // opens the deny modal
	ActionRevoke           = "access:revoke"
	ActionReview           = "access:review"
	ActionDone             = "access:done"
	ActionExtend           = "access:extend" // opens the extend modal
	ActionApproveExtension = "access:approve_extension"
	ActionDenyExtension    = "access:deny_extension" // opens the deny modal
	// ActionNewCredentials asks for a new set of credentials within the
	// window (the credentials DM's "New credentials" button).
	ActionNewCredentials = "access:new_credentials"
)

// Callback ids of the modals.
const (
	CallbackRequest       = "access:request"
	CallbackDeny          = "access:deny"
	CallbackDenyExtension = "access:deny_extension"
	CallbackExtend        = "access:extend"
)

// JobSubmit submits a request on the worker (see Feature.Register).
const JobSubmit = "access.submit"

// KindSubmitted holds one create-only marker per submit job, so a
// redelivered job cannot file the same request twice.
const KindSubmitted = "access.submitted"

// submittedTTL is how long a submit marker is kept: longer than any queue
// redelivery.
const submittedTTL = 24 * time.Hour

// Searcher finds instances by Name tag or id for the instance select. tokken
// wires the store-backed index (instindex.Index), so that the ingress
// answers without EC2; its answer is as fresh as the worker's last refresh.
type Searcher interface {
	Search(ctx context.Context, query string, limit int) ([]bot.Target, error)
}

// MaxOptions is the most options Slack shows for one external select query.
const MaxOptions = 100

// Deps are what the access feature needs. Search may be nil (the instance
// select then only accepts a typed instance id); Clock, Logger and Location
// have defaults.
type Deps struct {
	Store      bot.Store
	Queue      bot.Queue
	Timers     bot.Timers
	Authorizer bot.Authorizer
	Catalogue  access.Catalogue
	Granter    access.Granter
	Inventory  access.Inventory
	ECS        access.ECSInventory // ecs-exec tasks (infra/ecsfleet)
	ECSSearch  ECSSearcher         // the modal's ECS selects (infra/ecsindex)
	// IdentityCenter grants identity-center profiles (infra/identitycenter;
	// the worker's only), linking DMs to the access portal PortalURL, and
	// finding requesters' Identity Center users through IdentityUsers
	// (the policy's mapping) or their Slack e-mail (access.Deps).
	IdentityCenter access.IdentityCenter
	PortalURL      string
	IdentityUsers  access.IdentityUsers
	Search         Searcher
	Slack          Slack
	Auditor        bot.Auditor
	// Directory resolves Slack users into principals (a *slackdir.Directory
	// shared with the other features, so there is one user-group cache).
	// Nil: New builds one over Slack for SlackGroups.
	Directory access.Directory
	// Listing resolves users for what the access UI only shows, or checks
	// again through Directory before anything is done: the profiles
	// `/access help` and the request modal list, and the break-glass
	// confirmation. It may answer from a short cache
	// ((*slackdir.Directory).Cached). Nil: Directory, or the cached view of
	// the directory New builds.
	Listing access.Directory
	// SlackGroups are the Slack user group ids the policies name
	// (policies.Set.SlackUserGroups), used when Directory is nil.
	SlackGroups []string
	// AuditChannel and OpsChannel receive alerts (config.Config.Access and
	// config.Config.OpsChannel).
	AuditChannel, OpsChannel string
	// Location is the zone times are shown in (default UTC); Region is put
	// in the CLI exports; Partition is the ARN partition (default "aws").
	Location  *time.Location
	Region    string
	Partition string
	// Protected are tokken's own resources, denied to every grant
	// (access.Deps.Protected).
	Protected []string
	Clock     func() time.Time
	Logger    *slog.Logger
}

// Feature is the access feature wired for Slack: the Service, and the
// handlers Register puts on a router.
type Feature struct {
	svc      *access.Service
	notifier *Notifier
	listing  access.Directory // Deps.Listing
	authz    bot.Authorizer
	cat      access.Catalogue
	slack    Slack
	queue    bot.Queue
	store    bot.Store
	search   Searcher
	ecs      ECSSearcher
	loc      *time.Location
	now      func() time.Time
	log      *slog.Logger
	help     string // access.Help made safe mrkdwn once: the most frequent answer
}

// New builds the access Service with a Slack notifier and directory.
func New(d Deps) (*Feature, error) {
	if d.Slack == nil {
		return nil, errors.New("accessui: a Slack client is required")
	}
	if d.Location == nil {
		d.Location = time.UTC
	}
	if d.Clock == nil {
		d.Clock = time.Now
	}
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	log := d.Logger.With("feature", "access")
	n := &Notifier{slack: d.Slack, cat: d.Catalogue, audit: d.AuditChannel, ops: d.OpsChannel, loc: d.Location, region: d.Region}
	if d.Catalogue == nil {
		return nil, errors.New("accessui: a catalogue is required")
	}
	dir, listing := d.Directory, d.Listing
	if dir == nil {
		sd := slackdir.New(d.Slack, d.SlackGroups, log)
		dir = sd
		if listing == nil {
			listing = sd.Cached()
		}
	}
	if listing == nil {
		listing = dir
	}
	svc, err := access.New(access.Deps{
		Store: d.Store, Queue: d.Queue, Timers: d.Timers, Auditor: d.Auditor, Authorizer: d.Authorizer,
		Catalogue: d.Catalogue, Granter: d.Granter, Notifier: n, Directory: dir, Inventory: d.Inventory, ECS: d.ECS,
		IdentityCenter: d.IdentityCenter, PortalURL: d.PortalURL, IdentityUsers: d.IdentityUsers,
		Clock: d.Clock, Logger: log, Partition: d.Partition, Protected: d.Protected,
	})
	if err != nil {
		return nil, err
	}
	return &Feature{
		svc: svc, notifier: n, listing: listing, authz: d.Authorizer, cat: d.Catalogue, slack: d.Slack, queue: d.Queue,
		store: d.Store, search: d.Search, ecs: d.ECSSearch, loc: d.Location, now: d.Clock, log: log,
		help: escapeText(access.Help),
	}, nil
}

// Service returns the access Service (for the sweep and for tests).
func (f *Feature) Service() *access.Service { return f.svc }

// Router is where Register puts the handlers (*router.Router).
type Router interface {
	HandleCommand(command string, fn router.CommandFunc)
	HandleInteraction(namespace string, fn router.InteractionFunc)
	HandleOptions(namespace string, fn router.OptionsFunc)
}

// Register adds /access, the access interactions and the instance options
// to r, and the Service's jobs and the submit job to jobs.
func (f *Feature) Register(r Router, jobs *bot.JobMux) {
	r.HandleCommand("/access", f.Command)
	r.HandleInteraction(Namespace, f.Interaction)
	r.HandleOptions(Namespace, f.Options)
	f.svc.Register(jobs)
	jobs.Handle(JobSubmit, f.runSubmit)
}

// explain turns a domain error into an ephemeral answer; other errors are
// returned so the router apologises with a reference and logs them.
func explain(err error) (*slack.Msg, error) {
	msg, ok := access.Explain(err)
	if !ok {
		return nil, err
	}
	return router.Ephemeral(escapeText(msg)), nil
}

// Command answers /access.
func (f *Feature) Command(ctx context.Context, cmd slack.SlashCommand) (*slack.Msg, error) {
	c, err := access.ParseCommand(cmd.Text)
	if err != nil {
		return explain(err)
	}
	switch c.Verb {
	case access.VerbHelp:
		return router.Ephemeral(f.helpFor(ctx, cmd.UserID)), nil
	case access.VerbModal:
		return f.openRequestModal(ctx, cmd)
	case access.VerbList:
		rs, err := f.svc.List(ctx, cmd.UserID)
		if err != nil {
			return nil, err
		}
		return router.Ephemeral(RenderList(rs, f.loc)), nil
	case access.VerbRevoke:
		r, err := f.svc.Revoke(ctx, cmd.UserID, c.RequestID, c.Reason)
		if err != nil {
			return explain(err)
		}
		return router.Ephemeral(fmt.Sprintf("Ending access `%s` (%s): sessions are being terminated. The request's message shows when it is done.",
			r.ID, mrkdwn.Escape(r.Profile))), nil
	case access.VerbCreds:
		r, err := f.svc.AskCredentials(ctx, cmd.UserID, c.RequestID)
		if err != nil {
			return explain(err)
		}
		return router.Ephemeral(f.credentialsAsked(r)), nil
	}
	in := access.SubmitInput{
		Requester: cmd.UserID, Profile: c.Profile, Duration: c.Duration, Instances: c.Instances, Reason: c.Reason,
	}
	if c.BreakGlass {
		return f.confirmBreakGlass(ctx, cmd, in)
	}
	cause := cmd.TriggerID
	if cause == "" {
		cause = bot.NewID("c-")
	}
	if err := f.enqueueSubmit(ctx, "cmd/"+cause, submitJob{Input: in, ResponseURL: cmd.ResponseURL}); err != nil {
		return nil, err
	}
	return router.Ephemeral(fmt.Sprintf("Checking your request for *%s* (%s)…", mrkdwn.Escape(c.Profile), access.FormatDuration(c.Duration))), nil
}

// choices are the profiles user may request, plus those they may only
// request as break-glass.
func (f *Feature) choices(ctx context.Context, user string) ([]Choice, error) {
	who, err := f.listing.Lookup(ctx, user)
	if err != nil {
		return nil, fmt.Errorf("look up %s: %w", user, err)
	}
	allowed, err := f.svc.RequestableBy(ctx, who)
	if err != nil {
		return nil, err
	}
	out := make([]Choice, 0, len(allowed))
	for _, p := range allowed {
		out = append(out, Choice{Profile: p})
	}
	for _, p := range f.cat.Profiles() {
		if !p.BreakGlass || containsProfile(out, p.Name) {
			continue
		}
		refusal, err := f.breakGlassRefusal(ctx, who, p, p.DefaultDuration)
		if err != nil {
			return nil, err
		}
		if refusal == nil {
			out = append(out, Choice{Profile: p, BreakGlassOnly: true})
		}
	}
	return out, nil
}

func containsProfile(cs []Choice, name string) bool {
	for _, c := range cs {
		if c.Profile.Name == name {
			return true
		}
	}
	return false
}

func (f *Feature) openRequestModal(ctx context.Context, cmd slack.SlashCommand) (*slack.Msg, error) {
	choices, err := f.choices(ctx, cmd.UserID)
	if err != nil {
		return nil, err
	}
	if len(choices) == 0 {
		return router.Ephemeral("There is no profile you may request right now. `/access help` shows how requests work; an admin can change who may request what."), nil
	}
	if _, err := f.slack.OpenView(ctx, cmd.TriggerID, RequestModal(choices)); err != nil {
		return nil, fmt.Errorf("open the request modal: %w", err)
	}
	return nil, nil
}

// Interaction handles the access buttons and modals.
func (f *Feature) Interaction(ctx context.Context, ic slack.InteractionCallback) (any, error) {
	switch ic.Type {
	case slack.InteractionTypeBlockActions:
		if len(ic.ActionCallback.BlockActions) == 0 {
			return nil, nil
		}
		return nil, f.click(ctx, ic, ic.ActionCallback.BlockActions[0])
	case slack.InteractionTypeViewSubmission:
		switch ic.View.CallbackID {
		case CallbackRequest:
			return f.requestSubmitted(ctx, ic)
		case CallbackDeny, CallbackDenyExtension:
			return f.denySubmitted(ctx, ic)
		case CallbackExtend:
			return f.extendSubmitted(ctx, ic)
		}
	}
	return nil, nil
}

func (f *Feature) click(ctx context.Context, ic slack.InteractionCallback, a *slack.BlockAction) error {
	if a.ActionID == ActionConfirmBreakGlass || a.ActionID == ActionCancelBreakGlass {
		return f.breakGlassClicked(ctx, ic, a)
	}
	id, user := strings.TrimSpace(a.Value), ic.User.ID
	if !access.ValidRequestID(id) {
		f.log.WarnContext(ctx, "access button without a request id", "action_id", a.ActionID)
		return nil
	}
	var err error
	switch a.ActionID {
	case ActionApprove:
		_, err = f.svc.Approve(ctx, user, id)
	case ActionDeny:
		if err = f.svc.MayDecide(ctx, user, id); err == nil {
			err = f.openView(ctx, ic, ReasonModal(CallbackDeny, "Deny request", id, "Deny "+id+"? Say why: the requester sees it."))
		}
	case ActionRevoke:
		_, err = f.svc.Revoke(ctx, user, id, "")
	case ActionReview:
		_, err = f.svc.Review(ctx, user, id)
	case ActionDone:
		_, err = f.svc.Done(ctx, user, id)
	case ActionNewCredentials:
		var r access.Request
		if r, err = f.svc.AskCredentials(ctx, user, id); err == nil {
			f.tellPrivately(ctx, ic, f.credentialsAsked(r))
		}
	case ActionExtend:
		err = f.openExtend(ctx, ic, user, id)
	case ActionApproveExtension, ActionDenyExtension:
		var r access.Request
		if r, err = f.svc.Get(ctx, id); err != nil {
			break
		}
		x := r.PendingExtension()
		switch {
		case x == nil || x.State != access.ExtensionPending:
			err = access.ErrUnknownExtension
		case a.ActionID == ActionApproveExtension:
			_, err = f.svc.ApproveExtension(ctx, user, id, x.ID)
		default:
			if err = f.svc.MayDecide(ctx, user, id); err != nil {
				break
			}
			err = f.openView(ctx, ic, ReasonModal(CallbackDenyExtension, "Deny extension", id+"/"+x.ID,
				"Deny the extension of "+id+"? Say why: the requester sees it."))
		}
	default:
		f.log.WarnContext(ctx, "unknown access action", "action_id", a.ActionID)
		return nil
	}
	if err == nil {
		return nil
	}
	msg, ok := access.Explain(err)
	if !ok {
		return err
	}
	f.tellPrivately(ctx, ic, escapeText(msg))
	return nil
}

// credentialsAsked answers an ask for new credentials that was taken.
func (f *Feature) credentialsAsked(r access.Request) string {
	return fmt.Sprintf(":key: New credentials for `%s` (*%s*) are being issued: they arrive in a DM from me and work until %s at the latest, when your access ends.",
		r.ID, mrkdwn.Escape(r.Profile), view{loc: f.loc}.when(r.Window.ExpiresAt))
}

func (f *Feature) openView(ctx context.Context, ic slack.InteractionCallback, v slack.ModalViewRequest) error {
	if _, err := f.slack.OpenView(ctx, ic.TriggerID, v); err != nil {
		return fmt.Errorf("open %s modal: %w", v.CallbackID, err)
	}
	return nil
}

func (f *Feature) openExtend(ctx context.Context, ic slack.InteractionCallback, user, id string) error {
	r, err := f.svc.Get(ctx, id)
	if err != nil {
		return err
	}
	switch {
	case r.Requester != user:
		return access.ErrNotRequester
	case r.State != access.StateActive:
		return &access.ErrNotActive{State: r.State}
	case r.PendingExtension() != nil:
		return access.ErrExtensionPending
	}
	p, ok := f.cat.Profile(r.Profile)
	if !ok {
		return &access.ErrUnknownProfile{Name: r.Profile}
	}
	return f.openView(ctx, ic, ExtendModal(r, p))
}

// tellPrivately shows text to the user who clicked: an ephemeral message
// where they clicked, else a DM. The click's response_url is not used: a
// post to it could rewrite the shared message. It is sent after the click
// is acknowledged (router.AfterAck).
func (f *Feature) tellPrivately(ctx context.Context, ic slack.InteractionCallback, text string) {
	router.AfterAck(ctx, func(ctx context.Context) { f.tellPrivatelyNow(ctx, ic, text) })
}

func (f *Feature) tellPrivatelyNow(ctx context.Context, ic slack.InteractionCallback, text string) {
	m := slackapi.Message{Text: text}
	ch := ic.Container.ChannelID
	if ch == "" {
		ch = ic.Channel.ID
	}
	if ch != "" {
		err := f.slack.PostEphemeral(ctx, ch, ic.User.ID, m)
		if err == nil {
			return
		}
		f.log.WarnContext(ctx, "ephemeral answer failed; sending a DM", "channel", ch, "user", ic.User.ID, "err", err)
	}
	if _, err := f.slack.DM(ctx, ic.User.ID, m); err != nil {
		f.log.ErrorContext(ctx, "could not answer the user", "user", ic.User.ID, "err", err)
	}
}

func (f *Feature) requestSubmitted(ctx context.Context, ic slack.InteractionCallback) (any, error) {
	user := ic.User.ID
	form, errs := parseRequestForm(ic.View.State)
	choices, err := f.choices(ctx, user)
	if err != nil {
		return nil, err
	}
	checkForm(form, choices, errs)
	if err := f.checkECSTaskOfService(ctx, form, errs); err != nil {
		return nil, err
	}
	if len(errs) > 0 {
		return slack.NewErrorsViewSubmissionResponse(errs), nil
	}
	in := access.SubmitInput{
		Requester: user, Profile: form.Profile, Duration: form.Duration, Instances: form.Instances,
		Reason: form.Reason, Ticket: form.Ticket, BreakGlass: form.BreakGlass, ECSTarget: form.ECSTarget,
		Account: form.Account,
	}
	if err := f.enqueueSubmit(ctx, "view/"+ic.View.ID+"/"+ic.View.Hash, submitJob{Input: in}); err != nil {
		return nil, err
	}
	return nil, nil
}

func (f *Feature) denySubmitted(ctx context.Context, ic slack.InteractionCallback) (any, error) {
	reason := strings.TrimSpace(stateValue(ic.View.State, blockReason).Value)
	if reason == "" {
		return slack.NewErrorsViewSubmissionResponse(map[string]string{blockReason: "Say why: the requester sees the reason."}), nil
	}
	if msg := access.ReasonTooLong(reason); msg != "" {
		return slack.NewErrorsViewSubmissionResponse(map[string]string{blockReason: msg}), nil
	}
	id, ext, _ := strings.Cut(ic.View.PrivateMetadata, "/")
	if !access.ValidRequestID(id) {
		return slack.NewErrorsViewSubmissionResponse(map[string]string{blockReason: "This form lost track of its request; close it and click Deny again."}), nil
	}
	var err error
	if ic.View.CallbackID == CallbackDenyExtension {
		_, err = f.svc.DenyExtension(ctx, ic.User.ID, id, ext, reason)
	} else {
		_, err = f.svc.Deny(ctx, ic.User.ID, id, reason)
	}
	return fieldError(blockReason, err)
}

func (f *Feature) extendSubmitted(ctx context.Context, ic slack.InteractionCallback) (any, error) {
	id := ic.View.PrivateMetadata
	reason := strings.TrimSpace(stateValue(ic.View.State, blockReason).Value)
	d, err := access.ParseDuration(stateValue(ic.View.State, blockDuration).SelectedOption.Value)
	switch {
	case err != nil:
		return slack.NewErrorsViewSubmissionResponse(map[string]string{blockDuration: "Choose how much longer."}), nil
	case reason == "":
		return slack.NewErrorsViewSubmissionResponse(map[string]string{blockReason: "Say why: approvers decide on it."}), nil
	case access.ReasonTooLong(reason) != "":
		return slack.NewErrorsViewSubmissionResponse(map[string]string{blockReason: access.ReasonTooLong(reason)}), nil
	}
	_, err = f.svc.Extend(ctx, ic.User.ID, id, d, reason)
	var long *access.ErrDurationTooLong
	if errors.As(err, &long) {
		return fieldError(blockDuration, err)
	}
	return fieldError(blockReason, err)
}

// fieldError shows a domain error on a modal field (the modal stays open);
// nil closes the modal; other errors fail the submission.
func fieldError(block string, err error) (any, error) {
	if err == nil {
		return nil, nil
	}
	msg, ok := access.Explain(err)
	if !ok {
		return nil, err
	}
	return slack.NewErrorsViewSubmissionResponse(map[string]string{block: msg}), nil
}

// Options answers the instance select: instances whose Name tag or id
// matches what the user typed, narrowed to those the chosen profile
// allows. A complete instance id the search does not know (launched since
// the index was last refreshed) is offered as typed: the worker checks
// every submitted instance against EC2 anyway.
func (f *Feature) Options(ctx context.Context, ic slack.InteractionCallback) (any, error) {
	resp := &slack.OptionsResponse{Options: []*slack.OptionBlockObject{}}
	if ic.ActionID == actionID(blockECSService) || ic.ActionID == actionID(blockECSTask) {
		return f.ecsOptions(ctx, ic)
	}
	if ic.ActionID != actionID(blockTargets) {
		return resp, nil
	}
	query := strings.TrimSpace(ic.Value)
	p, chosen := f.cat.Profile(stateValue(ic.View.State, blockProfile).SelectedOption.Value)
	if f.search == nil {
		if q := strings.ToLower(query); bot.IsInstanceID(q) {
			resp.Options = append(resp.Options, option(q, q))
		}
		return resp, nil
	}
	found, err := f.search.Search(ctx, query, MaxOptions)
	if err != nil {
		return nil, fmt.Errorf("search instances: %w", err)
	}
	if q := strings.ToLower(query); bot.IsInstanceID(q) && !slices.ContainsFunc(found, func(t bot.Target) bool { return t.ID == q }) {
		resp.Options = append(resp.Options, option(q, q+" (not found yet; checked when you submit)"))
	}
	for _, t := range found {
		if chosen && p.Kind == access.KindSSM && !p.Instances.Selects(t) {
			continue
		}
		resp.Options = append(resp.Options, targetOption(t))
		if len(resp.Options) == MaxOptions {
			break
		}
	}
	return resp, nil
}

// submitJob is the payload of a JobSubmit job.
type submitJob struct {
	Input access.SubmitInput `json:"input"`
	// ResponseURL is the command's, for the answer; empty for the modal
	// (the answer goes to the requester's DM).
	ResponseURL string `json:"response_url,omitempty"`
}

func (f *Feature) enqueueSubmit(ctx context.Context, cause string, p submitJob) error {
	j, err := bot.NewJob("access-submit/"+cause, JobSubmit, p)
	if err != nil {
		return err
	}
	if err := f.queue.Enqueue(ctx, j); err != nil {
		return fmt.Errorf("queue the request of %s: %w", p.Input.Requester, err)
	}
	return nil
}

// runSubmit files a request on the worker and tells the requester how it
// went. A marker makes a redelivered job a no-op; a failure that is not the
// user's releases it so the retry can submit.
func (f *Feature) runSubmit(ctx context.Context, j bot.Job) error {
	var p submitJob
	if err := j.Decode(&p); err != nil {
		return err
	}
	if p.Input.Requester == "" {
		return bot.Permanent(fmt.Errorf("submit job %s: no requester", j.ID))
	}
	_, err := f.store.Put(ctx, bot.Record{Kind: KindSubmitted, Key: j.ID, Data: []byte(`{}`), ExpiresAt: time.Now().Add(submittedTTL)})
	if errors.Is(err, bot.ErrConflict) {
		f.log.InfoContext(ctx, "submit job already ran", "job", j.ID)
		return nil
	}
	if err != nil {
		return fmt.Errorf("submit job %s: %w", j.ID, err)
	}
	r, err := f.svc.Submit(ctx, p.Input)
	if err != nil {
		msg, ok := access.Explain(err)
		if !ok {
			if derr := f.store.Delete(ctx, KindSubmitted, j.ID, 0); derr != nil {
				err = errors.Join(err, derr)
			}
			return fmt.Errorf("submit job %s: %w", j.ID, err)
		}
		f.reply(ctx, p, escapeText(msg))
		return nil
	}
	// Submit posted the approver message (or found it cannot be posted):
	// answer from what is stored now.
	if cur, err := f.svc.Get(ctx, r.ID); err == nil {
		r = cur
	}
	f.reply(ctx, p, f.submitted(r))
	return nil
}

func (f *Feature) submitted(r access.Request) string {
	if r.State != access.StatePending {
		text := fmt.Sprintf(":key: Access `%s` to *%s* for %s is being granted: your credentials arrive in a DM from me.",
			r.ID, mrkdwn.Escape(r.Profile), access.FormatDuration(r.Duration))
		if r.Unposted != nil {
			text += "\n:warning: " + unpostedText(r)
		}
		return text
	}
	if r.Unposted != nil {
		return ":warning: " + unpostedText(r)
	}
	where := "the approvers' channel"
	if p, ok := f.cat.Profile(r.Profile); ok && p.ApproverChannel != "" {
		where = "<#" + p.ApproverChannel + ">"
	}
	return fmt.Sprintf(":hourglass_flowing_sand: Request `%s` for *%s* (%s) is waiting in %s for %d approval(s). I will DM you at each step.",
		r.ID, mrkdwn.Escape(r.Profile), access.FormatDuration(r.Duration), where, max(r.ApprovalsNeeded, 1))
}

// reply answers the requester through the command's response_url, else a DM.
func (f *Feature) reply(ctx context.Context, p submitJob, text string) {
	if p.ResponseURL != "" {
		err := f.slack.PostToResponseURL(ctx, p.ResponseURL, slackapi.Response{Text: text})
		if err == nil {
			return
		}
		f.log.WarnContext(ctx, "response_url answer failed; sending a DM", "user", p.Input.Requester, "err", err)
	}
	if _, err := f.slack.DM(ctx, p.Input.Requester, slackapi.Message{Text: text}); err != nil {
		f.log.ErrorContext(ctx, "could not answer the requester", "user", p.Input.Requester, "err", err)
	}
}
