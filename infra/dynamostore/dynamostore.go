// Package dynamostore is the bot.Store for AWS: one DynamoDB table holding
// every kind of record (single-table design).
//
// # Layout
//
//	pk  (S)  partition key: the record's kind, e.g. "request"
//	sk  (S)  sort key: the record's key within the kind
//	v   (N)  version, 1 on create and +1 on every write
//	d   (B)  the document (absent when empty)
//	ttl (N)  expiry in Unix seconds, rounded up; absent: never expires
//
// ttl is the table's TTL attribute, so DynamoDB deletes expired records for
// free, but only "typically within two days": reads therefore filter expired
// records themselves, and conditional writes treat them as absent. ttl is
// housekeeping, never a timer.
//
// # Concurrency
//
// Every write is conditional, so two Lambda invocations racing on the same
// record cannot both win: a create requires attribute_not_exists(pk) or an
// expired ttl; an update requires v = the version the writer read (and the
// record to be live). A failed condition (ConditionalCheckFailedException)
// becomes a *bot.ConflictError. Reads are strongly consistent, so a writer
// that loses and re-reads sees the winner's write.
//
// # Why one partition per kind
//
// All records of a kind share a partition key, so List is a single Query
// over a sort-key range, with no scatter-gather and no secondary index. A
// partition key serves at most about 1,000 write and 3,000 read units a
// second; tokken is a chat bot whose volume is people asking for access and
// alerts arriving: tens to thousands of writes a day, far below that even in
// an alert storm. Without local secondary indexes a partition key has no
// size limit, and TTL keeps the kinds from growing without bound.
//
// At a much higher volume the hot spots would be the append-mostly kinds
// (audit, alerts), whose keys grow with time so all writes land on one
// partition. The change then is to shard their partition key (pk =
// kind#<hash(key) mod N>, List merging N sorted Queries), or to bucket
// time-ordered kinds by day (pk = kind#2025-01-02), and to move lookups that
// do not follow the key (e.g. grants by requester) to a GSI.
//
// New takes a client built by the caller from the SDK's configuration
// loading, so AWS_ENDPOINT_URL_DYNAMODB and the rest of the SDK's
// environment apply. CreateTable is for local runs and tests; production
// tables come from template.yaml.
package dynamostore

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/tokken/tokken/bot"
)

const (
	// TTLAttribute is the attribute the table's TTL setting must name.
	TTLAttribute = "ttl"
)

// item is a record as stored.
type item struct {
	PK  string `dynamodbav:"pk"`
	SK  string `dynamodbav:"sk"`
	V   int64  `dynamodbav:"v"`
	D   []byte `dynamodbav:"d,omitempty"`
	TTL int64  `dynamodbav:"ttl,omitempty"`
}

// itemKey is an item's primary key.
type itemKey struct {
	PK string `dynamodbav:"pk"`
	SK string `dynamodbav:"sk"`
}

// Store is a bot.Store over one DynamoDB table. It is safe for concurrent use.
type Store struct {
	client *dynamodb.Client
	table  string
	now    func() time.Time
}

var _ bot.Store = (*Store)(nil)

// New returns a Store over table, which must have the layout described in
// the package comment (see CreateTable).
func New(client *dynamodb.Client, table string) *Store {
	return &Store{client: client, table: table, now: time.Now}
}

// Close does nothing: the client holds no resources that need releasing.
func (s *Store) Close() error { return nil }

// Get returns the live record under (kind, key), read consistently.
func (s *Store) Get(ctx context.Context, kind, key string) (bot.Record, error) {
	if err := bot.ValidateKey(kind, key); err != nil {
		return bot.Record{}, fmt.Errorf("get: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return bot.Record{}, fmt.Errorf("get %s %q: %w", kind, key, err)
	}
	k, err := attributevalue.MarshalMap(itemKey{PK: kind, SK: key})
	if err != nil {
		return bot.Record{}, fmt.Errorf("get %s %q: encode key: %w", kind, key, err)
	}
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(s.table),
		Key:            k,
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return bot.Record{}, fmt.Errorf("get %s %q from %s: %w", kind, key, s.table, err)
	}
	if out.Item == nil {
		return bot.Record{}, bot.ErrNotFound
	}
	it, err := decode(out.Item)
	if err != nil {
		return bot.Record{}, fmt.Errorf("get %s %q: %w", kind, key, err)
	}
	if expired(it.TTL, s.now()) {
		return bot.Record{}, bot.ErrNotFound
	}
	return it.record(), nil
}

// Put writes rec with a conditional PutItem: create if absent or expired
// (rec.Version 0), otherwise replace if v is rec.Version and the record is
// live. It returns the new version or a *bot.ConflictError.
func (s *Store) Put(ctx context.Context, rec bot.Record) (int64, error) {
	if err := bot.ValidateRecord(rec); err != nil {
		return 0, fmt.Errorf("put: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("put %s %q: %w", rec.Kind, rec.Key, err)
	}
	next := rec.Version + 1
	av, err := attributevalue.MarshalMap(item{
		PK: rec.Kind, SK: rec.Key, V: next, D: rec.Data, TTL: ttlSeconds(rec.ExpiresAt),
	})
	if err != nil {
		return 0, fmt.Errorf("put %s %q: encode: %w", rec.Kind, rec.Key, err)
	}
	now := nowValue(s.now())
	in := &dynamodb.PutItemInput{TableName: aws.String(s.table), Item: av}
	if rec.Version == 0 {
		in.ConditionExpression = aws.String("attribute_not_exists(#pk) OR #ttl < :now")
		in.ExpressionAttributeNames = map[string]string{"#pk": "pk", "#ttl": TTLAttribute}
		in.ExpressionAttributeValues = map[string]types.AttributeValue{":now": now}
	} else {
		in.ConditionExpression = aws.String("#v = :expected AND (attribute_not_exists(#ttl) OR #ttl >= :now)")
		in.ExpressionAttributeNames = map[string]string{"#v": "v", "#ttl": TTLAttribute}
		in.ExpressionAttributeValues = map[string]types.AttributeValue{
			":expected": number(rec.Version),
			":now":      now,
		}
	}
	if _, err := s.client.PutItem(ctx, in); err != nil {
		if isConditionFailed(err) {
			return 0, &bot.ConflictError{Kind: rec.Kind, Key: rec.Key, Expected: rec.Version}
		}
		return 0, fmt.Errorf("put %s %q to %s: %w", rec.Kind, rec.Key, s.table, err)
	}
	return next, nil
}

// Delete removes the record, if version is not 0 only when v is version.
// A missing or expired record counts as deleted.
func (s *Store) Delete(ctx context.Context, kind, key string, version int64) error {
	if err := bot.ValidateKey(kind, key); err != nil {
		return fmt.Errorf("delete: %w", err)
	}
	if version < 0 {
		return fmt.Errorf("delete %s %q: negative version %d", kind, key, version)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("delete %s %q: %w", kind, key, err)
	}
	k, err := attributevalue.MarshalMap(itemKey{PK: kind, SK: key})
	if err != nil {
		return fmt.Errorf("delete %s %q: encode key: %w", kind, key, err)
	}
	in := &dynamodb.DeleteItemInput{TableName: aws.String(s.table), Key: k}
	if version != 0 {
		in.ConditionExpression = aws.String("attribute_not_exists(#pk) OR #v = :expected OR #ttl < :now")
		in.ExpressionAttributeNames = map[string]string{"#pk": "pk", "#v": "v", "#ttl": TTLAttribute}
		in.ExpressionAttributeValues = map[string]types.AttributeValue{
			":expected": number(version),
			":now":      nowValue(s.now()),
		}
	}
	if _, err := s.client.DeleteItem(ctx, in); err != nil {
		if isConditionFailed(err) {
			return &bot.ConflictError{Kind: kind, Key: key, Expected: version}
		}
		return fmt.Errorf("delete %s %q from %s: %w", kind, key, s.table, err)
	}
	return nil
}

// List queries the kind's partition for sort keys in r, consistently,
// filtering expired records, following pages until limit live records
// (limit <= 0: all) are found.
func (s *Store) List(ctx context.Context, kind string, r bot.KeyRange, limit int) ([]bot.Record, error) {
	if err := bot.ValidateName("kind", kind); err != nil {
		return nil, fmt.Errorf("list: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("list %s: %w", kind, err)
	}
	q, ok := s.query(kind, r)
	if !ok {
		return nil, nil // the range holds no valid key
	}
	var out []bot.Record
	for {
		if limit > 0 {
			// One more than needed: BETWEEN includes To, dropped below.
			q.Limit = aws.Int32(int32(min(limit-len(out)+1, 1<<20)))
		}
		page, err := s.client.Query(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("list %s in %s: %w", kind, s.table, err)
		}
		now := s.now()
		for _, raw := range page.Items {
			it, err := decode(raw)
			if err != nil {
				return nil, fmt.Errorf("list %s: %w", kind, err)
			}
			if r.To != "" && it.SK >= r.To {
				return out, nil // past the range: the To end of BETWEEN
			}
			if expired(it.TTL, now) { // expired since the filter ran
				continue
			}
			out = append(out, it.record())
			if limit > 0 && len(out) == limit {
				return out, nil
			}
		}
		if len(page.LastEvaluatedKey) == 0 {
			return out, nil
		}
		q.ExclusiveStartKey = page.LastEvaluatedKey
	}
}

// query builds the Query for kind and r. ok is false when no valid key
// can fall in r.
//
// DynamoDB compares string keys by their UTF-8 bytes, as KeyRange does, but
// only accepts valid UTF-8, while range bounds need not be (PrefixRange
// appends "\xff"). Each bound is therefore replaced by the least valid
// string at or above it, which selects exactly the same valid keys.
func (s *Store) query(kind string, r bot.KeyRange) (*dynamodb.QueryInput, bool) {
	from, ok := ceilUTF8(r.From)
	if !ok {
		return nil, false
	}
	to, bounded := "", false
	if r.To != "" {
		to, bounded = ceilUTF8(r.To)
	}
	if bounded && from >= to {
		return nil, false
	}
	names := map[string]string{"#pk": "pk", "#ttl": TTLAttribute}
	values := map[string]types.AttributeValue{
		":pk":  &types.AttributeValueMemberS{Value: kind},
		":now": nowValue(s.now()),
	}
	cond := "#pk = :pk"
	switch {
	case from != "" && bounded:
		// Key conditions have no half-open range: BETWEEN includes :to,
		// and List drops a record whose key equals it.
		cond += " AND #sk BETWEEN :from AND :to"
	case from != "":
		cond += " AND #sk >= :from"
	case bounded:
		cond += " AND #sk < :to"
	}
	if from != "" {
		names["#sk"] = "sk"
		values[":from"] = &types.AttributeValueMemberS{Value: from}
	}
	if bounded {
		names["#sk"] = "sk"
		values[":to"] = &types.AttributeValueMemberS{Value: to}
	}
	return &dynamodb.QueryInput{
		TableName:                 aws.String(s.table),
		KeyConditionExpression:    aws.String(cond),
		FilterExpression:          aws.String("attribute_not_exists(#ttl) OR #ttl >= :now"),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
		ConsistentRead:            aws.Bool(true),
	}, true
}

// CreateTable creates the table with the layout in the package comment
// (on-demand capacity, TTL on TTLAttribute) and waits until it is active.
// An existing table is left as it is, apart from enabling TTL. It is meant
// for local runs and tests: production tables come from template.yaml.
func (s *Store) CreateTable(ctx context.Context) error {
	_, err := s.client.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName: aws.String(s.table),
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String("pk"), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String("sk"), AttributeType: types.ScalarAttributeTypeS},
		},
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String("pk"), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String("sk"), KeyType: types.KeyTypeRange},
		},
		BillingMode: types.BillingModePayPerRequest,
	})
	var inUse *types.ResourceInUseException
	if err != nil && !errors.As(err, &inUse) {
		return fmt.Errorf("create table %s: %w", s.table, err)
	}
	waiter := dynamodb.NewTableExistsWaiter(s.client, func(o *dynamodb.TableExistsWaiterOptions) {
		o.MinDelay, o.MaxDelay = 500*time.Millisecond, 5*time.Second
	})
	if err := waiter.Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(s.table)}, 5*time.Minute); err != nil {
		return fmt.Errorf("create table %s: wait until active: %w", s.table, err)
	}

	ttl, err := s.client.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(s.table)})
	if err != nil {
		return fmt.Errorf("create table %s: describe TTL: %w", s.table, err)
	}
	if d := ttl.TimeToLiveDescription; d != nil &&
		(d.TimeToLiveStatus == types.TimeToLiveStatusEnabled || d.TimeToLiveStatus == types.TimeToLiveStatusEnabling) {
		if name := aws.ToString(d.AttributeName); name != TTLAttribute {
			return fmt.Errorf("create table %s: TTL is on attribute %q, want %q", s.table, name, TTLAttribute)
		}
		return nil
	}
	if _, err := s.client.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName: aws.String(s.table),
		TimeToLiveSpecification: &types.TimeToLiveSpecification{
			AttributeName: aws.String(TTLAttribute),
			Enabled:       aws.Bool(true),
		},
	}); err != nil {
		return fmt.Errorf("create table %s: enable TTL: %w", s.table, err)
	}
	return nil
}

// decode unmarshals a stored item.
func decode(raw map[string]types.AttributeValue) (item, error) {
	var it item
	if err := attributevalue.UnmarshalMap(raw, &it); err != nil {
		return item{}, fmt.Errorf("decode item: %w", err)
	}
	return it, nil
}

// record converts a stored item to a bot.Record.
func (it item) record() bot.Record {
	rec := bot.Record{Kind: it.PK, Key: it.SK, Version: it.V, Data: it.D}
	if rec.Data == nil {
		rec.Data = []byte{}
	}
	if it.TTL != 0 {
		rec.ExpiresAt = time.Unix(it.TTL, 0)
	}
	return rec
}

// ttlSeconds is the ttl attribute for an expiry: Unix seconds rounded up,
// so a record never disappears before its ExpiresAt; 0 (omitted) for none.
func ttlSeconds(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	sec := t.Unix()
	if t.Nanosecond() > 0 {
		sec++
	}
	return sec
}

// expired is the Go side of the "#ttl < :now" conditions: both compare
// whole seconds, so reads and conditional writes agree on what is live.
func expired(ttl int64, now time.Time) bool {
	return ttl != 0 && ttl < now.Unix()
}

func nowValue(now time.Time) types.AttributeValue { return number(now.Unix()) }

func number(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

func isConditionFailed(err error) bool {
	var ccf *types.ConditionalCheckFailedException
	return errors.As(err, &ccf)
}

// ceilUTF8 returns the least valid UTF-8 string that is >= s in byte order;
// ok is false when there is none (s sorts after every valid string). For
// every valid key k, k >= s exactly when k >= the result, and k < s exactly
// when k < the result, so it can stand in for s as a range bound.
func ceilUTF8(s string) (string, bool) {
	if utf8.ValidString(s) {
		return s, true
	}
	// Split s into its longest valid prefix and the rest, which starts
	// with a byte sequence no rune encodes.
	i := 0
	for i < len(s) {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			break
		}
		i += size
	}
	prefix, rest := s[:i], s[i:]
	// A valid string above s that keeps the prefix continues with a rune
	// whose encoding sorts above rest; the least such string is the prefix
	// plus the least such rune.
	n := int(utf8.MaxRune) + 1 - surrogates
	if j := sort.Search(n, func(j int) bool { return string(runeAt(j)) > rest }); j < n {
		return prefix + string(runeAt(j)), true
	}
	// No rune sorts above rest: the answer is the least valid string above
	// every string starting with prefix.
	return successor(prefix)
}

// surrogates is the number of code points (U+D800-U+DFFF) that UTF-8 cannot
// encode.
const surrogates = 0xE000 - 0xD800

// runeAt returns the j-th encodable rune in code point order, which UTF-8
// preserves in byte order.
func runeAt(j int) rune {
	if j >= 0xD800 {
		j += surrogates
	}
	return rune(j)
}

// successor returns the least valid UTF-8 string greater than every string
// that starts with p, or false if p is empty or all U+10FFFF.
func successor(p string) (string, bool) {
	for p != "" {
		r, size := utf8.DecodeLastRuneInString(p)
		p = p[:len(p)-size]
		if r < utf8.MaxRune {
			r++
			if r == 0xD800 {
				r = 0xE000
			}
			return p + string(r), true
		}
	}
	return "", false
}
