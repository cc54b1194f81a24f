# Tools found when hss-gen wrote this folder, read by the Makefile before its own
# defaults; `make VERILATOR=...` or the same variable in the environment overrides them.
