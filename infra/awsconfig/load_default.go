//go:build !ingress

package awsconfig

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
)

// loadBase is the SDK's default configuration (config.LoadDefaultConfig):
// its whole credential chain, the shared config files and every variable
// the SDK reads, with o's region and credentials taking precedence.
func loadBase(ctx context.Context, o options) (aws.Config, error) {
	var load []func(*config.LoadOptions) error
	if o.region != "" {
		load = append(load, config.WithRegion(o.region))
	}
	if o.creds != nil {
		load = append(load, config.WithCredentialsProvider(o.creds))
	}
	cfg, err := config.LoadDefaultConfig(ctx, load...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("aws config: load: %w", err)
	}
	return cfg, nil
}
