# Orchestrator and cluster targets (see DEPLOYMENT.md).
ORCH_PY ?= $(if $(wildcard $(BIN)/python),$(BIN)/python,python3)
ORCH_CONFIG ?= config/orchestration.yaml
ORCH_ARGS ?=
MAX_FILES_DEBUG ?= 5
POLL_SECONDS ?= 300
WORK_ROOT ?= /mnt/decon-work
PMR_OPTS = $(if $(REGION),--region $(REGION)) $(if $(SSH_KEY),--ssh-key-path $(SSH_KEY))

.PHONY: orchestrate orchestrate-debug polling-auto-status polling-auto-terminate cluster-setup \
	host-status poormanray-command-generator generate-orchestrator-command

## orchestrate: run the orchestrator on this host (ORCH_CONFIG=..., ORCH_ARGS="--flag value ...")
orchestrate:
	$(ORCH_PY) orchestrator/orchestrator.py --config $(ORCH_CONFIG) $(ORCH_ARGS)

## orchestrate-debug: at most MAX_FILES_DEBUG files, no uploads, no local clean-up
orchestrate-debug:
	MAX_FILES_DEBUG=$(MAX_FILES_DEBUG) $(ORCH_PY) orchestrator/orchestrator.py --config $(ORCH_CONFIG) $(ORCH_ARGS)

define require_name
	@if [ -z "$(NAME)" ]; then echo "usage: make $@ NAME=<cluster-name> [REGION=...] [SSH_KEY=...]"; exit 2; fi
endef

## polling-auto-status NAME=<cluster>: print Running or Finished
polling-auto-status:
	$(require_name)
	@$(ORCH_PY) scripts/cluster/pmr_cluster.py status $(NAME) $(PMR_OPTS)

## polling-auto-terminate NAME=<cluster>: poll every POLL_SECONDS, terminate the cluster when Finished
polling-auto-terminate:
	$(require_name)
	@$(ORCH_PY) scripts/cluster/pmr_cluster.py wait-terminate $(NAME) --interval $(POLL_SECONDS) $(PMR_OPTS)

## cluster-setup NAME=<cluster>: install this checkout on every host, set PMR_HOST_INDEX/COUNT
cluster-setup:
	$(require_name)
	$(ORCH_PY) scripts/cluster/pmr_cluster.py setup $(NAME) --work-root $(WORK_ROOT) $(PMR_OPTS)

## host-status: Running/Finished for this machine (WORK_ROOT=/mnt/decon-work)
host-status:
	@scripts/cluster/host_status.sh $(WORK_ROOT)

## poormanray-command-generator: asks questions, prints create/setup/server/orchestrator commands (ARGS="--yes ...")
poormanray-command-generator:
	@$(ORCH_PY) scripts/cluster/command_generator.py $(ARGS)

## generate-orchestrator-command s3://prefix: orchestrator launch command for another input
ifeq (generate-orchestrator-command,$(firstword $(MAKECMDGOALS)))
GOC_INPUT := $(wordlist 2,$(words $(MAKECMDGOALS)),$(MAKECMDGOALS))
# The s3:// argument is a make goal too; give every extra goal an empty recipe.
%:
	@:
endif
generate-orchestrator-command:
	@if [ -z "$(strip $(GOC_INPUT)$(INPUT))" ]; then echo "usage: make generate-orchestrator-command s3://bucket/prefix"; exit 2; fi
	@$(ORCH_PY) scripts/cluster/generate_orchestrator_command.py $(or $(INPUT),$(GOC_INPUT))
