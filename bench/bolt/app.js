// The @slack/bolt peer of tokken's ack benchmark (bench/cmd/ackbench).
//
// It is what a team would write instead of tokken's ingress: Bolt's default
// HTTP receiver, the signing secret verified by Bolt exactly as in
// production, and handlers that only acknowledge. It answers the same
// requests the load generator sends tokken:
//   - the slash command /access with the ephemeral help text tokken
//     answers;
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

// The text tokken answers `/access help` with (bot/access.Help, with '<'
// and '>' escaped for mrkdwn), so both peers write a body of the same size.
const accessHelp = '*/access* asks for time-boxed AWS access.\n' +
  '• `/access` opens a form.\n' +
  '• `/access &lt;profile&gt; &lt;duration&gt; [i-… …] &lt;reason&gt;` asks in one line, e.g. ' +
  '`/access prod-ssm 30m i-0abc123def4567890 investigating 5xx on web-01`.\n' +
  '  Durations: whole hours and minutes such as `10m`, `1h`, `1h30m`, `90m` (at most the profile\'s maximum).\n' +
  '  Instances (ssm profiles only): `i-` followed by 8 or 17 hex digits, separated by spaces or commas.\n' +
  '• `/access list` shows your pending and active requests.\n' +
  '• `/access revoke &lt;request-id&gt; [reason]` ends access early (the requester, or anyone allowed to revoke).\n' +
  '• `/access help` shows this.';

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
