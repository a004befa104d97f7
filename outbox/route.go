package outbox

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Columns names the outbox table's columns (Debezium's table.field.event.*
// options). The zero value means the defaults.
type Columns struct {
	// ID (default "id"), Key ("aggregateid"), Type ("type"), Payload
	// ("payload"), Timestamp ("timestamp") and AggregateType
	// ("aggregatetype") are the column names.
	ID, Key, Type, Payload, Timestamp, AggregateType string
}

// withDefaults fills in Debezium's default column names.
func (c Columns) withDefaults() Columns {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&c.ID, "id")
	def(&c.Key, "aggregateid")
	def(&c.Type, "type")
	def(&c.Payload, "payload")
	def(&c.Timestamp, "timestamp")
	def(&c.AggregateType, "aggregatetype")
	return c
}

// Placement puts an extra column into each record (Debezium's
// table.fields.additional.placement, header placement only).
type Placement struct {
	// Column is the source column: one of the Columns fields' names.
	Column string
	// Header is the header name (the alias, else the column name).
	Header string
}

// Routing turns rows into records, following Debezium's Outbox Event Router.
// It is immutable after ParseOptions and safe for concurrent use.
type Routing struct {
	// Table is the outbox table.
	Table string
	// Columns names the table's columns.
	Columns Columns
	// RouteBy is the column whose value routes the row (route.by.field).
	RouteBy string
	// TopicRegex matches the routing value (route.topic.regex).
	TopicRegex *regexp.Regexp
	// TopicReplacement builds the topic (route.topic.replacement), with
	// ${routedByValue} and other named groups expanded.
	TopicReplacement string
	// Additional lists extra columns placed in headers.
	Additional []Placement
	// TombstoneOnEmpty publishes an empty payload as a null value
	// (route.tombstone.on.empty.payload).
	TombstoneOnEmpty bool
}

// debeziumOptions lists the Outbox Event Router options ParseOptions accepts.
var debeziumOptions = map[string]bool{
	"table.field.event.id": true, "table.field.event.key": true, "table.field.event.type": true,
	"table.field.event.payload": true, "table.field.event.timestamp": true,
	"table.fields.additional.placement": true, "route.by.field": true, "route.topic.regex": true,
	"route.topic.replacement": true, "route.tombstone.on.empty.payload": true,
	"table.field.additional.missing": true, "table.op.invalid.behavior": true,
	"table.expand.json.payload": true, "table": true,
}

// ParseOptions builds a Routing from Debezium Outbox Event Router option
// names (with or without the "transforms.<name>." prefix) plus "table".
// Unknown options and placements other than header are refused, so a
// configuration never silently means something else here.
func ParseOptions(opts map[string]string) (*Routing, error) {
	r := &Routing{Table: DefaultTable, TopicReplacement: "outbox.event.${routedByValue}"}
	regex := "(?<routedByValue>.*)"
	keys := make([]string, 0, len(opts))
	for k := range opts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, full := range keys {
		v := opts[full]
		k := full
		if strings.HasPrefix(k, "transforms.") {
			if i := strings.Index(k[len("transforms."):], "."); i >= 0 {
				k = k[len("transforms.")+i+1:]
			}
		}
		if !debeziumOptions[k] {
			return nil, fmt.Errorf("%w: unknown option %q", ErrInvalidOption, full)
		}
		switch k {
		case "table":
			r.Table = v
		case "table.field.event.id":
			r.Columns.ID = v
		case "table.field.event.key":
			r.Columns.Key = v
		case "table.field.event.type":
			r.Columns.Type = v
		case "table.field.event.payload":
			r.Columns.Payload = v
		case "table.field.event.timestamp":
			r.Columns.Timestamp = v
		case "route.by.field":
			r.RouteBy = v
		case "route.topic.regex":
			regex = v
		case "route.topic.replacement":
			r.TopicReplacement = v
		case "route.tombstone.on.empty.payload":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return nil, fmt.Errorf("%w: %s: %v", ErrInvalidOption, full, err)
			}
			r.TombstoneOnEmpty = b
		case "table.fields.additional.placement":
			ps, err := parsePlacements(v)
			if err != nil {
				return nil, err
			}
			r.Additional = ps
		case "table.field.additional.missing", "table.op.invalid.behavior", "table.expand.json.payload":
			// Accepted for compatibility: rows always carry every known
			// column, the relay only reads (never sees UPDATEs), and
			// payloads are published as stored.
		}
	}
	re, err := regexp.Compile("^(?:" + regex + ")$")
	if err != nil {
		return nil, fmt.Errorf("%w: route.topic.regex: %v", ErrInvalidOption, err)
	}
	r.TopicRegex = re
	r.Columns = r.Columns.withDefaults()
	if r.RouteBy == "" {
		r.RouteBy = r.Columns.AggregateType
	}
	if _, ok := r.column(&Row{}, r.RouteBy); !ok {
		return nil, fmt.Errorf("%w: route.by.field %q is not an outbox column", ErrInvalidOption, r.RouteBy)
	}
	for _, p := range r.Additional {
		if _, ok := r.column(&Row{}, p.Column); !ok {
			return nil, fmt.Errorf("%w: placement column %q is not an outbox column", ErrInvalidOption, p.Column)
		}
	}
	return r, nil
}

// DefaultRouting is Debezium's default configuration on the default table.
func DefaultRouting() *Routing {
	r, err := ParseOptions(nil)
	if err != nil {
		panic("outbox: default options do not parse: " + err.Error())
	}
	return r
}

func parsePlacements(v string) ([]Placement, error) {
	var out []Placement
	for _, item := range strings.Split(v, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		f := strings.Split(item, ":")
		if len(f) < 2 || len(f) > 3 || f[0] == "" {
			return nil, fmt.Errorf("%w: placement %q: want column:header[:alias]", ErrInvalidOption, item)
		}
		if f[1] != "header" {
			return nil, fmt.Errorf("%w: placement %q: only header placement is supported", ErrInvalidOption, item)
		}
		p := Placement{Column: f[0], Header: f[0]}
		if len(f) == 3 && f[2] != "" {
			p.Header = f[2]
		}
		out = append(out, p)
	}
	return out, nil
}

// column returns the value of the named column of row.
func (r *Routing) column(row *Row, name string) (string, bool) {
	switch name {
	case r.Columns.ID, "id":
		return row.ID, true
	case r.Columns.Key, "aggregateid":
		return row.AggregateID, true
	case r.Columns.Type, "type":
		return row.Type, true
	case r.Columns.AggregateType, "aggregatetype":
		return row.AggregateType, true
	case r.Columns.Payload, "payload":
		return string(row.Payload), true
	case r.Columns.Timestamp, "timestamp":
		return strconv.FormatInt(row.Timestamp.UnixMilli(), 10), true
	}
	return "", false
}

// Header is one record header.
type Header struct {
	// Key is the header name.
	Key string
	// Value is the header value.
	Value []byte
}

// Record is a row routed to a topic.
type Record struct {
	// Seq and ID identify the source row.
	Seq int64
	ID  string
	// Topic, Key, Value and Headers are what is produced.
	Topic   string
	Key     []byte
	Value   []byte
	Headers []Header
	// Time is the record timestamp (the row's write time).
	Time int64
}

// Route maps row to its record: topic from the routing value, key the
// aggregate id, header id, value the payload as stored.
func (r *Routing) Route(row *Row) (Record, error) {
	by, _ := r.column(row, r.RouteBy)
	m := r.TopicRegex.FindStringSubmatchIndex(by)
	if m == nil {
		return Record{}, fmt.Errorf("outbox: row %s: routing value %q does not match route.topic.regex", row.ID, by)
	}
	topic := string(r.TopicRegex.ExpandString(nil, r.TopicReplacement, by, m))
	rec := Record{
		Seq: row.Seq, ID: row.ID, Topic: topic, Key: []byte(row.AggregateID),
		Value: row.Payload, Time: row.Timestamp.UnixMilli(),
	}
	if r.TombstoneOnEmpty && len(rec.Value) == 0 {
		rec.Value = nil
	}
	rec.Headers = append(rec.Headers, Header{Key: "id", Value: []byte(row.ID)})
	for _, p := range r.Additional {
		v, _ := r.column(row, p.Column)
		rec.Headers = append(rec.Headers, Header{Key: p.Header, Value: []byte(v)})
	}
	hk := make([]string, 0, len(row.Headers))
	for k := range row.Headers {
		hk = append(hk, k)
	}
	sort.Strings(hk)
	for _, k := range hk {
		rec.Headers = append(rec.Headers, Header{Key: k, Value: []byte(row.Headers[k])})
	}
	return rec, nil
}
