/*
 * commands.h - the subcommands of the detheap tool, one file each.  Each
 * takes argv starting at the subcommand's name and returns the tool's
 * exit status (tool_util.h).
 */
#ifndef DH_TOOLS_COMMANDS_H
#define DH_TOOLS_COMMANDS_H

int dh_cmd_run(int argc, char **argv);
int dh_cmd_check(int argc, char **argv);
int dh_cmd_report(int argc, char **argv);
int dh_cmd_replay(int argc, char **argv);
int dh_cmd_image(int argc, char **argv);
/* The replay child: runs under the allocator being measured. */
int dh_cmd_replay_child(int argc, char **argv);

#endif
