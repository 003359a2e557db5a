// Stand-ins for plugin-steps.Jenkinsfile (REPLAY_STEPS): print what the step would have sent.
def slackSend(Map args) {
    echo "slack ${args.channel}: ${args.message}"
}
