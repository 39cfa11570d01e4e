package main

import (
	"testing"

	fc "github.com/alibabacloud-go/fc-20230330/v4/client"
	"github.com/alibabacloud-go/tea/dara"
)

// createHTTPTrigger gives function an anonymous HTTP trigger, without
// which it has no /fn/<function>/ endpoint.
func createHTTPTrigger(t testing.TB, c *fc.Client, function string) {
	t.Helper()
	if _, err := c.CreateTrigger(dara.String(function), &fc.CreateTriggerRequest{Body: &fc.CreateTriggerInput{
		TriggerName:   dara.String("http"),
		TriggerType:   dara.String("http"),
		TriggerConfig: dara.String(`{"authType":"anonymous"}`),
	}}); err != nil {
		t.Fatalf("CreateTrigger for %s: %v", function, err)
	}
}
