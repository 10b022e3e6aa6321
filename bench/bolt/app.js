// The @slack/bolt peer of tokken's ack benchmark (bench/cmd/ackbench).
//
// It is what a team would write instead of tokken's ingress: Bolt's default
// HTTP receiver, the signing secret verified by Bolt exactly as in
// production, and handlers that only acknowledge. It answers the same
// requests the load generator sends tokken:
//   - the slash command /access with the same ephemeral help text tokken
//     answers (so both write a response body of similar size);
//   - a click on the "alert.ack" button with an empty 200.
// No Slack Web API call is made: the bot token is a placeholder and token
// verification (auth.test at start) is off.
//
// Environment: SLACK_SIGNING_SECRET (required), PORT (default 0: any free
// port). Once listening it prints one line "listening 127.0.0.1:PORT" on
// stdout, which the harness waits for.
'use strict';

const { App, LogLevel } = require('@slack/bolt');

const secret = process.env.SLACK_SIGNING_SECRET;
if (!secret) {
  console.error('bolt peer: SLACK_SIGNING_SECRET is required');
  process.exit(2);
}

// The same text tokken answers `/access help` with (feature_access.go).
const accessHelp = '*/access* — time-boxed AWS access, approved in Slack.\n' +
  '• `/access &lt;profile&gt; &lt;duration&gt; [instance…] &lt;reason&gt;` — request access, e.g. `/access prod-ssm 30m i-0abc123def4567890 investigating 5xx`\n' +
  '• `/access` — open the request form\n' +
  '• `/access list` — your pending and active requests\n' +
  '• `/access revoke &lt;request-id&gt;` — end a grant early\n' +
  '• `/access help` — this help';

const app = new App({
  signingSecret: secret,
  token: 'xoxb-bench-placeholder',
  tokenVerificationEnabled: false,
  botId: 'B0BENCH0001',
  botUserId: 'U0BENCH0001',
  endpoints: ['/slack/commands', '/slack/interactions'],
  logLevel: LogLevel.ERROR,
});

app.command('/access', async ({ ack }) => {
  await ack({ response_type: 'ephemeral', text: accessHelp });
});

app.action('alert.ack', async ({ ack }) => {
  await ack();
});

app.error(async (err) => {
  console.error('bolt peer: handler error:', err);
});

(async () => {
  const server = await app.start({ port: Number(process.env.PORT || 0), host: '127.0.0.1' });
  const addr = server.address();
  console.log(`listening ${addr.address}:${addr.port}`);
})().catch((err) => {
  console.error('bolt peer: cannot start:', err);
  process.exit(1);
});

process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
