package ddblocal

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

func TestStartStop(t *testing.T) {
	var shared Shared
	defer shared.Stop()
	inst := shared.Require(t)
	if again := shared.Require(t); again != inst {
		t.Fatal("a second Require started another instance")
	}

	out, err := inst.Client().ListTables(t.Context(), &dynamodb.ListTablesInput{})
	if err != nil {
		t.Fatalf("ListTables: %v", err)
	}
	if len(out.TableNames) != 0 {
		t.Fatalf("a fresh in-memory instance has tables %q", out.TableNames)
	}

	inst.Stop()
	select {
	case <-inst.exited:
	default:
		t.Fatal("Stop returned before the process exited")
	}
	if _, err := http.Get(inst.Endpoint()); err == nil {
		t.Fatalf("%s still answers after Stop", inst.Endpoint())
	}
	inst.Stop() // a second Stop is harmless
}

func TestDir(t *testing.T) {
	t.Run("from the environment", func(t *testing.T) {
		t.Setenv("DYNAMODB_LOCAL_DIR", "/opt/ddb")
		if dir, err := Dir(); err != nil || dir != "/opt/ddb" {
			t.Fatalf("Dir() = %q, %v", dir, err)
		}
	})
	t.Run("from the module root", func(t *testing.T) {
		t.Setenv("DYNAMODB_LOCAL_DIR", "")
		dir, err := Dir()
		if err != nil {
			t.Fatalf("Dir: %v", err)
		}
		// This package is testkit/ddblocal: the module root is two up.
		root, _ := filepath.Abs("../..")
		if want := filepath.Join(root, ".tools", "dynamodb-local"); dir != want {
			t.Fatalf("Dir() = %q, want %q", dir, want)
		}
	})
}

func TestStartWithoutJar(t *testing.T) {
	t.Setenv("DYNAMODB_LOCAL_DIR", t.TempDir())
	inst, err := Start(context.Background())
	if err == nil {
		inst.Stop()
		t.Fatal("Start succeeded without a jar")
	}
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Start without a jar: %v, want ErrUnavailable", err)
	}
}

func TestRequireSkipsWhenNotInstalled(t *testing.T) {
	t.Setenv("CI", "")
	t.Setenv("TOKKEN_REQUIRE_DYNAMODB_LOCAL", "")
	s := &Shared{}
	s.once.Do(func() { s.err = fmt.Errorf("java not found on PATH: %w", ErrUnavailable) })
	reached := false
	ok := t.Run("needs DynamoDB Local", func(t *testing.T) {
		s.Require(t)
		reached = true
	})
	if !ok || reached {
		t.Fatalf("Require: subtest passed=%v, continued=%v; want it skipped", ok, reached)
	}
}

func TestRequired(t *testing.T) {
	for _, tc := range []struct {
		ci, require string
		want        bool
	}{
		{"", "", false},
		{"true", "", true},
		{"", "1", true},
	} {
		t.Setenv("CI", tc.ci)
		t.Setenv("TOKKEN_REQUIRE_DYNAMODB_LOCAL", tc.require)
		if got := required(); got != tc.want {
			t.Errorf("CI=%q TOKKEN_REQUIRE_DYNAMODB_LOCAL=%q: required() = %v", tc.ci, tc.require, got)
		}
	}
}

func TestTailBuffer(t *testing.T) {
	b := &tailBuffer{max: 5}
	for _, s := range []string{"abc", "defg", "h"} {
		fmt.Fprint(b, s)
	}
	if got := b.String(); got != "defgh" {
		t.Fatalf("tail = %q, want %q", got, "defgh")
	}
}
