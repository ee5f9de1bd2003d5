// Subcommands of speed_benchmark that read results instead of running a model:
//   compare BASE.json NEW.json [--format F] [--fail-above PCT] [--report html] [--output FILE]
//   report DIR   (re)writes DIR/report.html from the files of a run
#pragma once

namespace llm {

// argv[0] is the subcommand's name. Exit status: 0, 1 (--fail-above tripped), 2 (bad input).
int RunCompareCommand(int argc, char** argv);
int RunReportCommand(int argc, char** argv);

}  // namespace llm
