// Package ecsindex keeps an index of the ECS services and running tasks of
// the clusters ecs-exec profiles name, in tokken's store, so that the
// access modal's ECS select is answered by the ingress from the store
// alone (the ingress has no ECS permission, and Slack wants the options
// within 3 seconds), as infra/instindex does for instances.
//
// The worker keeps it: [Refresh] reads each cluster through
// infra/ecsfleet (ListServices, DescribeServices, ListTasks, DescribeTasks)
// and writes one record per cluster (kind [Kind], key the cluster name or
// ARN as the profile gives it) with a housekeeping expiry of [TTL]. The
// ingress reads it with [Index.SearchECSServices] and
// [Index.SearchECSTasks]. The index only helps people pick:
// what they submit is checked against ECS by the worker before approval.
package ecsindex

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/bot/access"
)

// Kind is the store kind of index records; the key is the cluster.
const Kind = "ecs.cluster"

// TTL is the housekeeping expiry of a cluster's record: a cluster no
// refresh has read for that long disappears from the select.
const TTL = time.Hour

// MaxTargets bounds what one cluster's record holds (services first), so
// the record stays well under a DynamoDB item's size.
const MaxTargets = 500

// Snapshot is one cluster as the last refresh saw it.
type Snapshot struct {
	Cluster     string         `json:"cluster"`
	Services    []ServiceEntry `json:"services,omitempty"`
	Tasks       []TaskEntry    `json:"tasks,omitempty"`
	RefreshedAt time.Time      `json:"refreshed_at"`
}

// ServiceEntry is an indexed service.
type ServiceEntry struct {
	Name string `json:"name"`
	Exec bool   `json:"exec,omitempty"` // enableExecuteCommand
}

// TaskEntry is an indexed RUNNING task.
type TaskEntry struct {
	ID      string `json:"id"`
	Service string `json:"service,omitempty"`
	Family  string `json:"family,omitempty"`
	Exec    bool   `json:"exec,omitempty"` // enableExecuteCommand
}

// Lister reads one cluster; *ecsfleet.Fleet is the implementation.
type Lister interface {
	List(ctx context.Context, cluster string) ([]access.ECSService, []access.ECSTask, error)
}

// Refresh rewrites the record of each cluster from what l lists, and
// returns how many services and tasks the index now holds. A cluster that
// cannot be read keeps its previous record (until its TTL) and is reported
// in the joined error; the others are still refreshed.
func Refresh(ctx context.Context, l Lister, store bot.Store, clusters []string, now time.Time) (int, error) {
	t := bot.Table[Snapshot]{Store: store, Kind: Kind}
	n := 0
	var errs []error
	for _, c := range clusters {
		svcs, tasks, err := l.List(ctx, c)
		if err != nil {
			errs = append(errs, fmt.Errorf("refresh ECS index of %s: %w", c, err))
			continue
		}
		snap := Snapshot{Cluster: c, RefreshedAt: now.UTC()}
		for _, s := range svcs {
			if len(snap.Services) < MaxTargets {
				snap.Services = append(snap.Services, ServiceEntry{Name: s.Name, Exec: s.EnableExecuteCommand})
			}
		}
		for _, k := range tasks {
			if len(snap.Services)+len(snap.Tasks) < MaxTargets {
				snap.Tasks = append(snap.Tasks, TaskEntry{ID: k.ID, Service: k.Service, Family: k.Family, Exec: k.EnableExecuteCommand})
			}
		}
		slices.SortFunc(snap.Services, func(a, b ServiceEntry) int { return strings.Compare(a.Name, b.Name) })
		slices.SortFunc(snap.Tasks, func(a, b TaskEntry) int {
			return strings.Compare(a.Service+"/"+a.ID, b.Service+"/"+b.ID)
		})
		if _, err := t.Upsert(ctx, c, TTL, func(v *Snapshot, _ bool) error { *v = snap; return nil }); err != nil {
			errs = append(errs, fmt.Errorf("write ECS index of %s: %w", c, err))
			continue
		}
		n += len(snap.Services) + len(snap.Tasks)
	}
	return n, errors.Join(errs...)
}

// Index answers the access modal's ECS selects from the store.
type Index struct{ Store bot.Store }

// snapshot is cluster's record; an unindexed cluster is an empty one.
func (i Index) snapshot(ctx context.Context, cluster string) (Snapshot, error) {
	v, err := bot.Table[Snapshot]{Store: i.Store, Kind: Kind}.Get(ctx, cluster)
	if errors.Is(err, bot.ErrNotFound) {
		return Snapshot{Cluster: cluster}, nil
	}
	if err != nil {
		return Snapshot{}, fmt.Errorf("read ECS index of %s: %w", cluster, err)
	}
	return v.Value, nil
}

// SearchECSServices returns cluster's services whose name contains query
// (case-insensitive), by name, at most limit: the modal's service select
// (accessui.ECSSearcher). An unindexed cluster has none.
func (i Index) SearchECSServices(ctx context.Context, cluster, query string, limit int) ([]access.ECSService, error) {
	snap, err := i.snapshot(ctx, cluster)
	if err != nil {
		return nil, err
	}
	q := strings.ToLower(strings.TrimSpace(query))
	out := []access.ECSService{}
	for _, s := range snap.Services {
		if len(out) < limit && strings.Contains(strings.ToLower(s.Name), q) {
			out = append(out, access.ECSService{Name: s.Name, EnableExecuteCommand: s.Exec})
		}
	}
	return out, nil
}

// SearchECSTasks returns cluster's running tasks of service (any service
// when it is empty) whose id, service or family contains query
// (case-insensitive), at most limit: the modal's task select
// (accessui.ECSSearcher). An unindexed cluster has none.
func (i Index) SearchECSTasks(ctx context.Context, cluster, service, query string, limit int) ([]access.ECSTask, error) {
	snap, err := i.snapshot(ctx, cluster)
	if err != nil {
		return nil, err
	}
	q := strings.ToLower(strings.TrimSpace(query))
	out := []access.ECSTask{}
	for _, k := range snap.Tasks {
		if len(out) >= limit || (service != "" && k.Service != service) {
			continue
		}
		if strings.Contains(k.ID, q) || strings.Contains(strings.ToLower(k.Service), q) || strings.Contains(strings.ToLower(k.Family), q) {
			out = append(out, access.ECSTask{ID: k.ID, Service: k.Service, Family: k.Family, LastStatus: "RUNNING", EnableExecuteCommand: k.Exec})
		}
	}
	return out, nil
}
