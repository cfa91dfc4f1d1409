#!/usr/bin/env bash
# The Node compatibility tests (the official customerio-node client against a
# running gateway) need a gateway with keys and broadcasts, so
# gateway/e2e/audience_node_test.go sets one up and runs `node --test` in
# scripts/node as part of `go test`. Nothing is left to run here.
echo "node tests: run by go test ./gateway/e2e (TestAudienceCustomerIONode)"
