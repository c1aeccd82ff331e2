// Package sudo is spore's sudo transport: sudo://USER becomes USER (root
// when the hop names nobody) on the machine of the hop's parent, so it
// chains after any hop: local, ssh://web1,sudo://root,
// sudo://root,sudo://app.
//
// Open asks the parent to spawn
//
//	sudo -p PROMPT -u USER [-H] [-i] -- BOOT-COMMAND...
//
// with a terminal (sdk.SpawnRequest.TTY): sudo reads the password from the
// terminal while the boot command's stdin and stdout stay binary-clean
// pipes. PROMPT carries a random token made for each connection, so the
// password prompt is recognised whatever else appears on the terminal (a
// PAM banner, password-feedback asterisks, a translated message); it also
// asks sudo for the name of the user whose password is wanted and the host
// name (%p@%h), which the question shown to the person repeats. When PAM's
// own prompt replaces PROMPT (sudoers passprompt_override off and a
// non-default PAM prompt), a terminal line ending in "Password:" (or a few
// common translations of it) is taken as the prompt.
//
// The environment of sudo gets LC_MESSAGES=C, so that sudo's messages are in
// English and can be classified. LC_MESSAGES rather than LC_ALL: where
// sudoers keeps LC_* variables for the command, LC_ALL=C would also give the
// target's interpreter, and every command run through it, the C character
// set. Recognising the prompt never depends on the language.
//
// Stream.Setup answers the prompt: it asks the host's Prompter for the
// "password" (which takes it from password_env=, password_file= or a person)
// and types it on the terminal. When sudo asks again, the answer was wrong,
// and Setup asks again with Retry set; the host never offers a
// password_env/password_file value twice, so a wrong one fails the hop at
// once with KindIncorrectPassword. With NOPASSWD sudo asks nothing and
// Setup only waits. The password goes to sudo only through the terminal:
// never in argv, the environment, a log or an error.
//
// Classify turns sudo's own failures into typed errors: KindIncorrectPassword
// ("3 incorrect password attempts"), KindNotAllowed ("is not in the sudoers
// file", "is not allowed to execute", "may not run sudo", requiretty),
// KindBadTarget ("unknown user"), KindUnavailable (sudo not installed,
// not setuid, or no terminal), and KindNoPython when sudo cannot execute the
// interpreter. Everything else is left to the host.
//
// Options: login (sudo -i: the target user's login shell runs the boot
// command, reading its profile, in its home directory) and set_home
// (sudo -H). There is deliberately no preserve_env (sudo -E): it would carry
// the calling user's PYTHONPATH, PYTHONSTARTUP and the like into an
// interpreter running as the target user.
//
// The plugin binary is plugins/sudo/cmd/spore-transport-sudo.
package sudo
