package metrics

import (
	"encoding/json"
	"slices"
	"strings"
)

// metadata is the EMF "_aws" member.
type metadata struct {
	Timestamp         int64             `json:"Timestamp"`
	CloudWatchMetrics []metricDirective `json:"CloudWatchMetrics"`
}

// metricDirective tells CloudWatch which root members are metrics and which
// are dimensions.
type metricDirective struct {
	Namespace  string             `json:"Namespace"`
	Dimensions [][]string         `json:"Dimensions"`
	Metrics    []metricDefinition `json:"Metrics"`
}

type metricDefinition struct {
	Name string `json:"Name"`
	Unit Unit   `json:"Unit"`
}

// documents renders one group as EMF root objects. A metric carrying more
// than MaxValuesPerMetric values continues in further documents, and no
// document declares more than MaxMetricsPerLine metrics. A count appears
// once, as a number; a single duration as a number, several as an array.
func (r *Recorder) documents(ts int64, g *group) []map[string]any {
	names := make([]string, 0, len(g.metrics))
	for name := range g.metrics {
		names = append(names, name)
	}
	slices.Sort(names)

	dimSets := r.dimensionSets(g.extra)
	var docs []map[string]any
	for round := 0; ; round++ {
		lo := round * MaxValuesPerMetric
		var active []string
		for _, name := range names {
			if s := g.metrics[name]; s.unit == UnitCount && round == 0 || s.unit != UnitCount && len(s.values) > lo {
				active = append(active, name)
			}
		}
		if len(active) == 0 {
			return docs
		}
		for chunk := range slices.Chunk(active, MaxMetricsPerLine) {
			doc := make(map[string]any, len(r.base)+len(g.extra)+len(chunk)+1)
			for _, d := range r.base {
				doc[d.Name] = d.Value
			}
			for _, d := range g.extra {
				doc[d.Name] = d.Value
			}
			defs := make([]metricDefinition, 0, len(chunk))
			for _, name := range chunk {
				s := g.metrics[name]
				defs = append(defs, metricDefinition{Name: name, Unit: s.unit})
				switch {
				case s.unit == UnitCount:
					doc[name] = s.sum
				case len(s.values) == 1:
					doc[name] = s.values[0]
				default:
					doc[name] = s.values[lo:min(lo+MaxValuesPerMetric, len(s.values))]
				}
			}
			doc["_aws"] = metadata{
				Timestamp: ts,
				CloudWatchMetrics: []metricDirective{{
					Namespace:  r.namespace,
					Dimensions: dimSets,
					Metrics:    defs,
				}},
			}
			docs = append(docs, doc)
		}
	}
}

// dimensionSets is the Dimensions member: all dimensions, and when there
// are extra ones also the base dimensions alone, so every metric can be
// read (and alarmed on) as a total without metric math.
func (r *Recorder) dimensionSets(extra []Dimension) [][]string {
	if len(extra) == 0 {
		return [][]string{r.baseNames}
	}
	all := make([]string, 0, len(r.base)+len(extra))
	all = append(all, r.baseNames...)
	for _, d := range extra {
		all = append(all, d.Name)
	}
	slices.SortFunc(all, strings.Compare)
	return [][]string{all, r.baseNames}
}

// appendJSONLine appends v's JSON encoding and a newline to buf.
func appendJSONLine(buf []byte, v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return buf, err
	}
	buf = append(buf, b...)
	return append(buf, '\n'), nil
}
