// The backend a fresh install talks to. `make extension BASE_URL=https://…` writes
// the deployment's BASE_URL here in the store zip; the options page can change it.
globalThis.CAIRN_DEFAULT_BACKEND = "http://localhost:8080";
