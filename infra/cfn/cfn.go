// Package cfn reads CloudFormation / SAM templates written in YAML, including
// the short-form intrinsic tags (!Ref, !Sub, !GetAtt, ...), into plain Go
// values so tests can enforce rules on what tokken deploys.
package cfn

import (
	"fmt"
	"os"
	"strings"
	"unicode"

	"gopkg.in/yaml.v3"
)

// Template is a parsed template: Resources by logical id, the Fn::ForEach
// loops of the Resources section by loop name, and the rest.
type Template struct {
	Globals   map[string]any
	Resources map[string]Resource
	Loops     map[string]ForEach
	Raw       map[string]any
}

// ForEach is an Fn::ForEach loop of the Resources section, which the
// AWS::LanguageExtensions transform expands at deploy time into one copy
// of Fragment per element of Collection.
type ForEach struct {
	Identifier string
	Collection any            // a list, or {"Ref": a CommaDelimitedList parameter}
	Fragment   map[string]any // output key (with ${Identifier} or &{Identifier}) → resource
}

// forEachPrefix starts the key of an Fn::ForEach loop.
const forEachPrefix = "Fn::ForEach::"

// Resource is one entry of Resources.
type Resource struct {
	Type       string
	Properties map[string]any
	Metadata   map[string]any
	Condition  any // the name of the condition the resource is created under, if any
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
	t := &Template{Raw: raw, Resources: map[string]Resource{}, Loops: map[string]ForEach{}}
	t.Globals, _ = raw["Globals"].(map[string]any)
	res, _ := raw["Resources"].(map[string]any)
	for id, r := range res {
		if name, ok := strings.CutPrefix(id, forEachPrefix); ok {
			l, err := parseForEach(id, r)
			if err != nil {
				return nil, err
			}
			t.Loops[name] = l
			continue
		}
		m, ok := r.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("resource %s is not a mapping", id)
		}
		typ, _ := m["Type"].(string)
		props, _ := m["Properties"].(map[string]any)
		meta, _ := m["Metadata"].(map[string]any)
		t.Resources[id] = Resource{Type: typ, Properties: props, Metadata: meta, Condition: m["Condition"]}
	}
	return t, nil
}

func parseForEach(id string, v any) (ForEach, error) {
	args, _ := v.([]any)
	if len(args) != 3 {
		return ForEach{}, fmt.Errorf("%s: want [identifier, collection, fragment]", id)
	}
	ident, _ := args[0].(string)
	frag, _ := args[2].(map[string]any)
	if ident == "" || frag == nil {
		return ForEach{}, fmt.Errorf("%s: want [identifier, collection, fragment]", id)
	}
	return ForEach{Identifier: ident, Collection: args[1], Fragment: frag}, nil
}

// Expand returns the resources loop l makes, by logical id, with params
// as the values of list parameters its collection may Ref. As the
// transform does, ${Identifier} in keys and strings and a Ref to the
// identifier become the element, and &{Identifier} in keys the element
// with every character but letters and digits removed.
func (l ForEach) Expand(params map[string][]string) (map[string]Resource, error) {
	var elems []string
	switch c := l.Collection.(type) {
	case []any:
		for _, e := range c {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("collection element %v is not a string", e)
			}
			elems = append(elems, s)
		}
	case map[string]any:
		ref, _ := c["Ref"].(string)
		p, ok := params[ref]
		if !ok {
			return nil, fmt.Errorf("collection %v: no value for the parameter", c)
		}
		elems = p
	default:
		return nil, fmt.Errorf("collection %v is neither a list nor a Ref", c)
	}
	out := map[string]Resource{}
	for _, e := range elems {
		alnum := strings.Map(func(r rune) rune {
			if r < 128 && (unicode.IsLetter(r) || unicode.IsDigit(r)) {
				return r
			}
			return -1
		}, e)
		subst := strings.NewReplacer("${"+l.Identifier+"}", e, "&{"+l.Identifier+"}", alnum)
		for key, frag := range l.Fragment {
			id := subst.Replace(key)
			if id == key {
				return nil, fmt.Errorf("output key %s does not use the identifier %s", key, l.Identifier)
			}
			if _, dup := out[id]; dup {
				return nil, fmt.Errorf("elements make the logical id %s twice", id)
			}
			m, ok := l.substitute(frag, e, subst).(map[string]any)
			if !ok {
				return nil, fmt.Errorf("output %s is not a mapping", key)
			}
			typ, _ := m["Type"].(string)
			props, _ := m["Properties"].(map[string]any)
			meta, _ := m["Metadata"].(map[string]any)
			out[id] = Resource{Type: typ, Properties: props, Metadata: meta, Condition: m["Condition"]}
		}
	}
	return out, nil
}

func (l ForEach) substitute(v any, elem string, subst *strings.Replacer) any {
	switch x := v.(type) {
	case string:
		return subst.Replace(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = l.substitute(e, elem, subst)
		}
		return out
	case map[string]any:
		if len(x) == 1 && x["Ref"] == l.Identifier {
			return elem
		}
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = l.substitute(e, elem, subst)
		}
		return out
	}
	return v
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
			// YAML forbids a key twice in one mapping; a parser that keeps
			// the last one would silently drop a whole section.
			if _, dup := m[n.Content[i].Value]; dup {
				return nil, fmt.Errorf("line %d: key %s defined twice in one mapping", n.Content[i].Line, n.Content[i].Value)
			}
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
