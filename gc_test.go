package main

import "testing"

func TestGCSettings(t *testing.T) {
	tests := []struct {
		name       string
		env        map[string]string
		percent    int
		setPercent bool
		limit      int64
		setLimit   bool
	}{
		{"serve defaults", nil, gcPercent, true, 0, false},
		{"GOGC set by the operator", map[string]string{"GOGC": "100"}, 0, false, 0, false},
		{"Lambda 512 MiB", map[string]string{"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512"}, gcPercent, true, 384 << 20, true},
		{"Lambda with GOMEMLIMIT", map[string]string{"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512", "GOMEMLIMIT": "100MiB"}, gcPercent, true, 0, false},
		{"bad memory size", map[string]string{"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "lots"}, gcPercent, true, 0, false},
		{"absurd memory size", map[string]string{"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "9223372036854775807"}, gcPercent, true, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, sp, l, sl := gcSettings(func(k string) string { return tt.env[k] })
			if p != tt.percent || sp != tt.setPercent || l != tt.limit || sl != tt.setLimit {
				t.Errorf("gcSettings = %d %v %d %v, want %d %v %d %v", p, sp, l, sl, tt.percent, tt.setPercent, tt.limit, tt.setLimit)
			}
		})
	}
}
