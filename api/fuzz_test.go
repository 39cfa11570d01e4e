package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/containerd/errdefs"
)

// Fuzz targets of what fcd decodes from anonymous or signed clients: the
// Authorization header and the control API's JSON bodies. Each checks a
// property, not only the absence of panics.

// FuzzParseAuthorization: whatever parses covers the headers a signature
// must cover, and formats back to a header that parses to the same.
func FuzzParseAuthorization(f *testing.F) {
	f.Add("ACS3-HMAC-SHA256 Credential=AK,SignedHeaders=host;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce,Signature=abc")
	f.Add("ACS3-HMAC-SHA256 Credential=AK, SignedHeaders=content-type;host;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce, Signature=ABC")
	f.Add("ACS3-HMAC-SHA256 Credential=a=b,SignedHeaders=HOST;x-acs-date,Signature=0")
	f.Add("ACS3-HMAC-SHA256 ")
	f.Add("Bearer x")
	f.Fuzz(func(t *testing.T, h string) {
		a, err := ParseAuthorization(h)
		if err != nil {
			if !errors.Is(err, ErrBadAuthorization) {
				t.Fatalf("error %v does not wrap ErrBadAuthorization", err)
			}
			return
		}
		for _, r := range requiredSignedHeaders {
			if !contains(a.SignedHeaders, r) {
				t.Fatalf("%q parsed without %s signed", h, r)
			}
		}
		again, err := ParseAuthorization(AuthorizationHeader(a.AccessKeyID, a.SignedHeaders, a.Signature))
		if err != nil || !reflect.DeepEqual(again, a) {
			t.Fatalf("%q: parsed %+v, formatted and parsed again %+v (%v)", h, a, again, err)
		}
	})
}

// FuzzFunctionInput: a CreateFunction body that NewFunction accepts gives
// a function that stays valid through what fcd does with it next: the
// store's JSON round trip, an empty update, and an update with the same
// body. A refusal is always InvalidArgument (400), never anything else.
func FuzzFunctionInput(f *testing.F) {
	f.Add([]byte(`{"functionName":"f","runtime":"custom-container","customContainerConfig":{"image":"r/i:t"}}`))
	f.Add([]byte(`{"functionName":"f","runtime":"custom-container","memorySize":1024,"cpu":0.5,"timeout":60,"diskSize":10240,"instanceConcurrency":10,"environmentVariables":{"A":"b"},"customContainerConfig":{"image":"registry.example.com:5000/ns/i@sha256:` + string(bytes.Repeat([]byte("a"), 64)) + `","port":8080,"command":["/bin/sh"],"entrypoint":["-c","x"],"accelerationType":"Default","healthCheckConfig":{"httpGetUrl":"/ready"}},"instanceLifecycleConfig":{"initializer":{"handler":"h","timeout":3},"preStop":{"handler":"h","timeout":3}},"role":"acs:ram::1:role/r"}`))
	f.Add([]byte(`{"functionName":"f","runtime":"custom-container","memorySize":100,"customContainerConfig":{"image":"r/i:t"}}`))
	f.Add([]byte(`{"functionName":"f","runtime":"custom-container","environmentVariables":{"FC_X":"1","a\u0000":"\u0000"},"customContainerConfig":{"image":"r/i:t"}}`))
	f.Add([]byte(`{"functionName":"f","runtime":"custom-container","cpu":1e39,"customContainerConfig":{"image":"r/i:t"}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var in Input
		if json.Unmarshal(body, &in) != nil {
			return
		}
		now := time.Unix(1700000000, 0)
		fn, err := NewFunction(&in, "id", "local", "1", now)
		if err != nil {
			if !errdefs.IsInvalidArgument(err) {
				t.Fatalf("refused with %v, not InvalidArgument", err)
			}
			return
		}
		if err := fn.Validate(); err != nil {
			t.Fatalf("NewFunction returned a function that does not validate: %v", err)
		}
		stored, err := json.Marshal(fn)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		var back Function
		if err := json.Unmarshal(stored, &back); err != nil {
			t.Fatalf("the stored form %s does not decode: %v", stored, err)
		}
		if err := back.Validate(); err != nil {
			t.Fatalf("valid before the store, invalid after (%s): %v", stored, err)
		}
		if again, _ := json.Marshal(&back); !bytes.Equal(again, stored) {
			t.Fatalf("the store's round trip changed the function:\n%s\n%s", stored, again)
		}
		if _, err := fn.Update(&Input{}, now); err != nil {
			t.Fatalf("an empty update of a valid function failed: %v", err)
		}
		if _, err := fn.Update(&in, now); err != nil {
			t.Fatalf("updating with the body it was created from failed: %v", err)
		}
	})
}

// FuzzTriggerInput: a trigger CreateTrigger accepts is one the invoke
// path can use: an HTTP trigger's configuration parses.
func FuzzTriggerInput(f *testing.F) {
	f.Add([]byte(`{"triggerName":"web","triggerType":"http","triggerConfig":"{\"authType\":\"anonymous\",\"methods\":[\"GET\",\"POST\"]}"}`))
	f.Add([]byte(`{"triggerName":"web","triggerType":"http","triggerConfig":"{\"authType\":\"function\"}"}`))
	f.Add([]byte(`{"triggerName":"t","triggerType":"timer","triggerConfig":"{}"}`))
	f.Add([]byte(`{"triggerName":"web","triggerType":"http","triggerConfig":"{\"authType\":\"function\",\"methods\":[\"get\"]}","qualifier":"LATEST"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var in TriggerInput
		if json.Unmarshal(body, &in) != nil {
			return
		}
		tr, err := NewTrigger(&in, "id", time.Unix(1700000000, 0))
		if err != nil {
			if !errdefs.IsInvalidArgument(err) {
				t.Fatalf("refused with %v, not InvalidArgument", err)
			}
			return
		}
		if tr.TriggerType == TriggerTypeHTTP {
			if _, err := tr.HTTPConfig(); err != nil {
				t.Fatalf("accepted trigger config %q does not parse at invoke time: %v", tr.TriggerConfig, err)
			}
		}
		if _, err := tr.Update(&TriggerInput{}, time.Unix(1700000001, 0)); err != nil {
			t.Fatalf("an empty update of a valid trigger failed: %v", err)
		}
	})
}
