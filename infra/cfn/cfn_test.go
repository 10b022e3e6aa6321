package cfn

import (
	"reflect"
	"testing"
)

func TestParseShortTags(t *testing.T) {
	tpl, err := Parse([]byte(`
Resources:
  Q:
    Type: AWS::SQS::Queue
    Properties:
      A: !Ref Table
      B: !GetAtt Queue.Arn
      C: !Sub "arn:${AWS::Partition}:x"
      D: !Join [",", [a, !Ref B]]
      E: 3
`))
	if err != nil {
		t.Fatal(err)
	}
	got := tpl.Resources["Q"].Properties
	want := map[string]any{
		"A": map[string]any{"Ref": "Table"},
		"B": map[string]any{"Fn::GetAtt": []any{"Queue", "Arn"}},
		"C": map[string]any{"Fn::Sub": "arn:${AWS::Partition}:x"},
		"D": map[string]any{"Fn::Join": []any{",", []any{"a", map[string]any{"Ref": "B"}}}},
		"E": 3,
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %#v\nwant %#v", got, want)
	}
	if ids := tpl.OfType("AWS::SQS::Queue"); len(ids) != 1 || ids[0] != "Q" {
		t.Fatalf("OfType = %v", ids)
	}
}

func TestParseRejectsGarbage(t *testing.T) {
	if _, err := Parse([]byte("- a\n- b\n")); err == nil {
		t.Fatal("want error for a top-level sequence")
	}
	if _, err := Parse([]byte("a: [\n")); err == nil {
		t.Fatal("want error for broken YAML")
	}
}
