// Package cfn reads CloudFormation / SAM templates written in YAML, including
// the short-form intrinsic tags (!Ref, !Sub, !GetAtt, ...), into plain Go
// values so tests can enforce rules on what tokken deploys.
package cfn

import (
	"fmt"
	"os"
	"strings"

	"gopkg.in/yaml.v3"
)

// Template is a parsed template: Resources by logical id, and the rest.
type Template struct {
	Globals   map[string]any
	Resources map[string]Resource
	Raw       map[string]any
}

// Resource is one entry of Resources.
type Resource struct {
	Type       string
	Properties map[string]any
	Metadata   map[string]any
}

// Load parses the template at path.
func Load(path string) (*Template, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read template: %w", err)
	}
	return Parse(b)
}

// Parse parses template text. Short-form tags become their long form:
// `!Ref X` → map{"Ref": "X"}, `!GetAtt A.B` → map{"Fn::GetAtt": ["A","B"]},
// `!Sub s` → map{"Fn::Sub": s}, and so on.
func Parse(b []byte) (*Template, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return nil, fmt.Errorf("parse template: %w", err)
	}
	v, err := convert(&root)
	if err != nil {
		return nil, err
	}
	raw, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("parse template: top level is not a mapping")
	}
	t := &Template{Raw: raw, Resources: map[string]Resource{}}
	t.Globals, _ = raw["Globals"].(map[string]any)
	res, _ := raw["Resources"].(map[string]any)
	for id, r := range res {
		m, ok := r.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("resource %s is not a mapping", id)
		}
		typ, _ := m["Type"].(string)
		props, _ := m["Properties"].(map[string]any)
		meta, _ := m["Metadata"].(map[string]any)
		t.Resources[id] = Resource{Type: typ, Properties: props, Metadata: meta}
	}
	return t, nil
}

// OfType returns the logical ids of resources of type typ.
func (t *Template) OfType(typ string) []string {
	var ids []string
	for id, r := range t.Resources {
		if r.Type == typ {
			ids = append(ids, id)
		}
	}
	return ids
}

func convert(n *yaml.Node) (any, error) {
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return convert(n.Content[0])
	case yaml.AliasNode:
		return convert(n.Alias)
	}
	var v any
	switch n.Kind {
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			val, err := convert(n.Content[i+1])
			if err != nil {
				return nil, err
			}
			m[n.Content[i].Value] = val
		}
		v = m
	case yaml.SequenceNode:
		s := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			val, err := convert(c)
			if err != nil {
				return nil, err
			}
			s = append(s, val)
		}
		v = s
	default:
		if !isShortForm(n.Tag) {
			var x any
			if err := n.Decode(&x); err != nil {
				return nil, fmt.Errorf("line %d: %w", n.Line, err)
			}
			return x, nil
		}
		v = n.Value
	}
	if !isShortForm(n.Tag) {
		return v, nil
	}
	name := strings.TrimPrefix(n.Tag, "!")
	switch name {
	case "Ref", "Condition":
		return map[string]any{name: v}, nil
	case "GetAtt":
		if s, ok := v.(string); ok {
			a, b, _ := strings.Cut(s, ".")
			v = []any{a, b}
		}
	}
	return map[string]any{"Fn::" + name: v}, nil
}

// isShortForm reports whether tag is a CloudFormation short-form intrinsic
// (!Ref) rather than a YAML core tag (!!str, !!int, ...).
func isShortForm(tag string) bool {
	return strings.HasPrefix(tag, "!") && !strings.HasPrefix(tag, "!!")
}
