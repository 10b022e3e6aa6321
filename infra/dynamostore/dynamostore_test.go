package dynamostore

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"regexp"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/bot/storetest"
	"github.com/tokken/tokken/testkit/ddblocal"
)

// local is the DynamoDB Local instance every test in this binary shares.
var local ddblocal.Shared

func TestMain(m *testing.M) {
	code := m.Run()
	local.Stop()
	os.Exit(code)
}

var unsafeTableChars = regexp.MustCompile(`[^a-zA-Z0-9_.-]+`)

// newTable creates a fresh table for the test in DynamoDB Local and deletes
// it when the test ends.
func newTable(tb testing.TB) *Store {
	tb.Helper()
	client := local.Require(tb).Client()
	name := unsafeTableChars.ReplaceAllString(tb.Name(), "-")
	name = fmt.Sprintf("%.200s-%x", name, rand.Uint64())
	s := New(client, name)
	if err := s.CreateTable(tb.Context()); err != nil {
		tb.Fatalf("CreateTable: %v", err)
	}
	tb.Cleanup(func() {
		// tb.Context is done by now.
		if _, err := client.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(name)}); err != nil {
			tb.Errorf("DeleteTable %s: %v", name, err)
		}
	})
	return s
}

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) bot.Store { return newTable(t) })
}

func TestCreateTable(t *testing.T) {
	s := newTable(t)
	// Creating it again is not an error and leaves the data alone.
	if _, err := s.Put(t.Context(), bot.Record{Kind: "k", Key: "a", Data: []byte("x")}); err != nil {
		t.Fatalf("Put: %v", err)
	}
	if err := s.CreateTable(t.Context()); err != nil {
		t.Fatalf("second CreateTable: %v", err)
	}
	if _, err := s.Get(t.Context(), "k", "a"); err != nil {
		t.Fatalf("Get after second CreateTable: %v", err)
	}

	desc, err := s.client.DescribeTable(t.Context(), &dynamodb.DescribeTableInput{TableName: aws.String(s.table)})
	if err != nil {
		t.Fatalf("DescribeTable: %v", err)
	}
	keys := map[string]types.KeyType{}
	for _, k := range desc.Table.KeySchema {
		keys[aws.ToString(k.AttributeName)] = k.KeyType
	}
	if keys["pk"] != types.KeyTypeHash || keys["sk"] != types.KeyTypeRange || len(keys) != 2 {
		t.Fatalf("key schema = %v, want pk HASH and sk RANGE", keys)
	}
	ttl, err := s.client.DescribeTimeToLive(t.Context(), &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(s.table)})
	if err != nil {
		t.Fatalf("DescribeTimeToLive: %v", err)
	}
	if d := ttl.TimeToLiveDescription; d == nil || aws.ToString(d.AttributeName) != TTLAttribute ||
		(d.TimeToLiveStatus != types.TimeToLiveStatusEnabled && d.TimeToLiveStatus != types.TimeToLiveStatusEnabling) {
		t.Fatalf("TTL = %+v, want enabled on %q", ttl.TimeToLiveDescription, TTLAttribute)
	}
}

// TestStoredLayout checks the item layout that template.yaml, the TTL
// setting and any operator reading the table rely on.
func TestStoredLayout(t *testing.T) {
	s := newTable(t)
	exp := time.Unix(1_900_000_000, 500)
	if _, err := s.Put(t.Context(), bot.Record{Kind: "grant", Key: "g#1", Data: []byte("doc"), ExpiresAt: exp}); err != nil {
		t.Fatalf("Put: %v", err)
	}
	out, err := s.client.GetItem(t.Context(), &dynamodb.GetItemInput{
		TableName: aws.String(s.table),
		Key: map[string]types.AttributeValue{
			"pk": &types.AttributeValueMemberS{Value: "grant"},
			"sk": &types.AttributeValueMemberS{Value: "g#1"},
		},
	})
	if err != nil {
		t.Fatalf("GetItem: %v", err)
	}
	want := map[string]string{"v": "1", "ttl": "1900000001"}
	for name, val := range want {
		n, ok := out.Item[name].(*types.AttributeValueMemberN)
		if !ok || n.Value != val {
			t.Errorf("attribute %s = %#v, want N %s", name, out.Item[name], val)
		}
	}
	if d, ok := out.Item["d"].(*types.AttributeValueMemberB); !ok || string(d.Value) != "doc" {
		t.Errorf("attribute d = %#v, want B \"doc\"", out.Item["d"])
	}
	if len(out.Item) != 5 {
		t.Errorf("item has %d attributes, want pk sk v d ttl: %v", len(out.Item), out.Item)
	}
}

// TestListPages checks List follows pagination: DynamoDB returns at most
// 1 MB per Query page, so 12 records of 300 KB take several pages.
func TestListPages(t *testing.T) {
	s := newTable(t)
	doc := make([]byte, 300<<10)
	for i := range 12 {
		if _, err := s.Put(t.Context(), bot.Record{Kind: "big", Key: fmt.Sprintf("k%02d", i), Data: doc}); err != nil {
			t.Fatalf("Put: %v", err)
		}
	}
	for _, limit := range []int{0, 5, 12} {
		recs, err := s.List(t.Context(), "big", bot.KeyRange{}, limit)
		if err != nil {
			t.Fatalf("List(limit %d): %v", limit, err)
		}
		want := 12
		if limit > 0 {
			want = limit
		}
		if len(recs) != want {
			t.Fatalf("List(limit %d) = %d records, want %d", limit, len(recs), want)
		}
		for i, rec := range recs {
			if rec.Key != fmt.Sprintf("k%02d", i) || len(rec.Data) != len(doc) {
				t.Fatalf("record %d: key %q, %d bytes", i, rec.Key, len(rec.Data))
			}
		}
	}
}

func TestTTLSeconds(t *testing.T) {
	for _, tc := range []struct {
		in   time.Time
		want int64
	}{
		{time.Time{}, 0},
		{time.Unix(100, 0), 100},
		{time.Unix(100, 1), 101},
		{time.Unix(100, 999_999_999), 101},
	} {
		if got := ttlSeconds(tc.in); got != tc.want {
			t.Errorf("ttlSeconds(%v) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

func TestCeilUTF8(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"", "", true},
		{"abc", "abc", true},
		{"日本", "日本", true},
		{"\xff", "", false},
		{"abc\xff", "abd", true},
		{"ab\xff\xff", "ac", true},
		{"日\xff", "旦", true}, // U+65E5 + 1
		{"\xe6\x97", "\u65c0", true},
		{"a\x80", "a\u0080", true},
		{"a\xc0", "a\u0080", true},
		{"\U0010FFFF\xff", "", false},
		{"a\U0010FFFF\xff", "b", true},
		{"\ud7ff\xff", "\ue000", true}, // U+D7FF's successor skips the surrogates
	} {
		got, ok := ceilUTF8(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("ceilUTF8(%+q) = %+q, %v; want %+q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

// FuzzCeilUTF8 checks the property List relies on: for every valid key k,
// k >= s exactly when k >= ceilUTF8(s).
func FuzzCeilUTF8(f *testing.F) {
	for _, s := range []string{"", "a", "a\xff", "日\xff", "\xe6\x97", "\xf4\x90", "\xed\xa0\x80"} {
		f.Add(s, "日本")
	}
	f.Fuzz(func(t *testing.T, s, k string) {
		if !utf8.ValidString(k) {
			return
		}
		c, ok := ceilUTF8(s)
		if ok && (!utf8.ValidString(c) || c < s) {
			t.Fatalf("ceilUTF8(%+q) = %+q: not a valid string >= the input", s, c)
		}
		want := k >= s
		got := ok && k >= c
		if got != want {
			t.Fatalf("key %+q: (k >= %+q) = %v but (k >= ceil %+q, %v) = %v", k, s, want, c, ok, got)
		}
	})
}

func BenchmarkPut(b *testing.B)             { storetest.BenchPut(b, newTable(b)) }
func BenchmarkGet(b *testing.B)             { storetest.BenchGet(b, newTable(b)) }
func BenchmarkUpdateContended(b *testing.B) { storetest.BenchUpdateContended(b, newTable(b)) }
