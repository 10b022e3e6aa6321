// The @slack/bolt peer of tokken's ack benchmark (bench/cmd/ackbench).
//
// It is what a team would write instead of tokken's ingress: Bolt's default
// HTTP receiver, the signing secret verified by Bolt exactly as in
// production. It answers the same requests the load generator sends tokken,
// doing the same work:
//   - the slash command /access: acknowledged with the ephemeral help text
//     tokken answers;
//   - a click on the "alert.ack" button: acknowledged, then (when
//     SLACK_API_URL is set) the clicker is told with chat.postEphemeral
//     that the alert is not known, as tokken does for an alert it does not
//     know. Without SLACK_API_URL the click is only acknowledged.
// Token verification (auth.test at start) is off.
//
// Environment: SLACK_SIGNING_SECRET (required), SLACK_API_URL and
// SLACK_BOT_TOKEN (the Web API the click posts to), PORT (default 0: any
// free port). Once listening it prints one line "listening 127.0.0.1:PORT"
// on stdout, which the harness waits for.
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

const apiURL = process.env.SLACK_API_URL;
// What tokken tells the clicker of an alert it does not know.
const unknownAlert = ':warning: tokken no longer knows this alert (it may have expired); nothing was changed.';

const app = new App({
  signingSecret: secret,
  token: process.env.SLACK_BOT_TOKEN || 'xoxb-bench-placeholder',
  tokenVerificationEnabled: false,
  botId: 'B0BENCH0001',
  botUserId: 'U0BENCH0001',
  endpoints: ['/slack/commands', '/slack/interactions'],
  clientOptions: apiURL ? { slackApiUrl: apiURL } : undefined,
  logLevel: LogLevel.ERROR,
});

app.command('/access', async ({ ack }) => {
  await ack({ response_type: 'ephemeral', text: accessHelp });
});

app.action('alert.ack', async ({ ack, body, client }) => {
  await ack();
  if (apiURL) {
    await client.chat.postEphemeral({
      channel: (body.channel && body.channel.id) || body.container.channel_id,
      user: body.user.id,
      text: unknownAlert,
    });
  }
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
