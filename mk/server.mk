# decon server: start it and talk to it (curl against localhost:$(PORT), default 8080).
#   make server [PORT=8080] [SERVER_ARGS="--purify --report-output-dir /tmp/decon-results"]
#   make health | make submit FILE=<path> | make status JOB_ID=<id>
PORT ?= 8080
SERVER_URL ?= localhost:$(PORT)
SERVER_ARGS ?=
DECON_BIN ?= $(if $(wildcard $(BIN)/decon),$(BIN)/decon,decon)
JSON_PP := $(if $(shell command -v jq 2>/dev/null),jq .,python3 -m json.tool)

.PHONY: server health submit status

server:
	$(DECON_BIN) server --port $(PORT) $(SERVER_ARGS)

health:
	@out=$$(curl -s http://$(SERVER_URL)/health) && printf '%s\n' "$$out" | $(JSON_PP) \
		|| echo "Server is not running at $(SERVER_URL)"

submit:
	@if [ -z "$(FILE)" ]; then \
		echo "Usage: make submit FILE=<path-to-file>"; \
	else \
		out=$$(curl -s -X POST http://$(SERVER_URL)/submit \
			-H "Content-Type: application/json" \
			-d '{"file_path":"$(abspath $(FILE))"}') && printf '%s\n' "$$out" | $(JSON_PP) \
			|| echo "Failed to submit job (is the server running at $(SERVER_URL)?)"; \
	fi

status:
	@if [ -z "$(JOB_ID)" ]; then \
		echo "Usage: make status JOB_ID=<job-id>"; \
	else \
		out=$$(curl -s http://$(SERVER_URL)/status/$(JOB_ID)) && printf '%s\n' "$$out" | $(JSON_PP) \
			|| echo "Failed to get status (is the server running at $(SERVER_URL)?)"; \
	fi
