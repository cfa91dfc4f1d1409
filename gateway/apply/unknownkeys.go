package apply

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// yaml.v3 words an unknown key in the Go type it decodes into ("line 4:
// field tpye not found in type apply.ChannelSpec"); operators write YAML.
var unknownField = regexp.MustCompile(`^line (\d+): field (\S+) not found in type .+$`)

// explainTypeErrors rewrites the unknown keys of a strict decode's error as
// the key's path in the file and the keys valid there; other errors are
// kept as they are.
func explainTypeErrors(name string, root *yaml.Node, err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) || root == nil || len(root.Content) == 0 {
		return fmt.Errorf("%s: %w", name, err)
	}
	probs := make(Problems, 0, len(te.Errors))
	for _, msg := range te.Errors {
		m := unknownField.FindStringSubmatch(msg)
		if m == nil {
			probs = append(probs, fmt.Sprintf("%s: %s", name, msg))
			continue
		}
		line, _ := strconv.Atoi(m[1])
		path, valid, ok := findKey(root.Content[0], reflect.TypeOf(Document{}), "", line, m[2])
		if !ok {
			probs = append(probs, fmt.Sprintf("%s: %s", name, msg))
			continue
		}
		probs = append(probs, fmt.Sprintf("%s:%d: %s: unknown key; valid keys here: %s", name, line, path, strings.Join(valid, ", ")))
	}
	return probs
}

// findKey walks node along t, the type it decodes into, to the mapping key
// key on line; it returns the key's path and the keys t's struct accepts
// there.
func findKey(node *yaml.Node, t reflect.Type, path string, line int, key string) (string, []string, bool) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case node.Kind == yaml.MappingNode && t.Kind() == reflect.Struct && t != reflect.TypeOf(yaml.Node{}):
		fields := map[string]reflect.Type{}
		var valid []string
		for i := range t.NumField() {
			f := t.Field(i)
			tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if tag == "" || tag == "-" {
				continue
			}
			fields[tag] = f.Type
			valid = append(valid, tag)
		}
		for i := 0; i+1 < len(node.Content); i += 2 {
			k, v := node.Content[i], node.Content[i+1]
			p := k.Value
			if path != "" {
				p = path + "." + k.Value
			}
			ft, known := fields[k.Value]
			if !known {
				if k.Line == line && k.Value == key {
					return p, valid, true
				}
				continue
			}
			if p, valid, ok := findKey(v, ft, p, line, key); ok {
				return p, valid, true
			}
		}
	case node.Kind == yaml.SequenceNode && t.Kind() == reflect.Slice:
		for i, item := range node.Content {
			if p, valid, ok := findKey(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i), line, key); ok {
				return p, valid, true
			}
		}
	}
	return "", nil, false
}
