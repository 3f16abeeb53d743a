package httpapi

// LogPoll exposes logPoll to the external tests, which wait for a follow to read a file.
const LogPoll = logPoll
