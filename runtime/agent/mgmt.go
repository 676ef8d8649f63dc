package agent

// StartManagementService starts runtime/mgmt's Service for a plan; nil
// until that package is wired in (the agent then logs that it runs no
// management protocol).
var StartManagementService StartManagement
