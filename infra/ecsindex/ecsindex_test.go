package ecsindex_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokken/tokken/bot/access"
	"github.com/tokken/tokken/infra/boltstore"
	"github.com/tokken/tokken/infra/ecsindex"
)

// lister is a fixed ECS listing per cluster; a cluster with an error
// fails.
type lister struct {
	svcs  map[string][]access.ECSService
	tasks map[string][]access.ECSTask
	fail  map[string]error
}

func (l lister) List(_ context.Context, c string) ([]access.ECSService, []access.ECSTask, error) {
	if err := l.fail[c]; err != nil {
		return nil, nil, err
	}
	return l.svcs[c], l.tasks[c], nil
}

func TestRefreshAndSearch(t *testing.T) {
	s, err := boltstore.Open(filepath.Join(t.TempDir(), "tokken.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	ctx := context.Background()
	const task = "0123456789abcdef0123456789abcdef"
	l := lister{
		svcs: map[string][]access.ECSService{"staging": {{Name: "worker", EnableExecuteCommand: true}, {Name: "web", EnableExecuteCommand: true}}},
		tasks: map[string][]access.ECSTask{"staging": {
			{ID: task, Service: "web", Family: "web-app", EnableExecuteCommand: true},
		}},
		fail: map[string]error{},
	}
	n, err := ecsindex.Refresh(ctx, l, s, []string{"staging"}, time.Now())
	if err != nil || n != 3 {
		t.Fatalf("Refresh = %d, %v", n, err)
	}
	idx := ecsindex.Index{Store: s}
	if svcs, err := idx.SearchECSServices(ctx, "staging", "WEB", 10); err != nil || len(svcs) != 1 || svcs[0].Name != "web" {
		t.Fatalf("services matching WEB: %+v %v", svcs, err)
	}
	if svcs, _ := idx.SearchECSServices(ctx, "staging", "", 10); len(svcs) != 2 || svcs[0].Name != "web" {
		t.Errorf("all services: %+v (sorted by name)", svcs)
	}
	if svcs, _ := idx.SearchECSServices(ctx, "staging", "", 1); len(svcs) != 1 {
		t.Errorf("limit 1: %+v", svcs)
	}
	if tasks, err := idx.SearchECSTasks(ctx, "staging", "", "WEB-APP", 10); err != nil || len(tasks) != 1 || tasks[0].ID != task {
		t.Fatalf("tasks matching the family: %+v %v", tasks, err)
	}
	if tasks, _ := idx.SearchECSTasks(ctx, "staging", "web", "", 10); len(tasks) != 1 || tasks[0].Service != "web" {
		t.Errorf("tasks of web: %+v", tasks)
	}
	if tasks, _ := idx.SearchECSTasks(ctx, "staging", "worker", "", 10); len(tasks) != 0 {
		t.Errorf("tasks of worker (none run): %+v", tasks)
	}
	svcs, err := idx.SearchECSServices(ctx, "prod", "", 10)
	tasks, terr := idx.SearchECSTasks(ctx, "prod", "", "", 10)
	if err != nil || terr != nil || len(svcs)+len(tasks) != 0 {
		t.Errorf("unindexed cluster: %+v %+v %v %v", svcs, tasks, err, terr)
	}

	// The task is gone: the next refresh drops it. A cluster that cannot
	// be read keeps its last record and is reported.
	l.tasks["staging"] = nil
	l.fail["prod"] = errors.New("AccessDeniedException")
	n, err = ecsindex.Refresh(ctx, l, s, []string{"staging", "prod"}, time.Now())
	if n != 2 || err == nil || !strings.Contains(err.Error(), "prod") {
		t.Fatalf("Refresh = %d, %v", n, err)
	}
	if tasks, _ := idx.SearchECSTasks(ctx, "staging", "", "", 10); len(tasks) != 0 {
		t.Errorf("a stopped task is still offered: %+v", tasks)
	}

	// A huge cluster is capped, services first.
	var many []access.ECSTask
	for i := range ecsindex.MaxTargets + 50 {
		many = append(many, access.ECSTask{ID: fmt.Sprintf("%032x", i), Service: "web"})
	}
	l.tasks["staging"] = many
	if n, err := ecsindex.Refresh(ctx, l, s, []string{"staging"}, time.Now()); err != nil || n != ecsindex.MaxTargets {
		t.Errorf("Refresh of a huge cluster = %d, %v; want %d", n, err, ecsindex.MaxTargets)
	}
}
