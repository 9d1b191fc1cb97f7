import { expect, Page, TestInfo } from "@playwright/test";
import { Client } from "pg";

export const CLERK = { email: "clerk@demo.test", password: "demo-clerk-password" };
export const MANAGER = { email: "manager@demo.test", password: "demo-manager-password" };

/** A connection to the server's database, as its owner, to set up and check what the pages did. */
export async function db(): Promise<Client> {
  const client = new Client({ connectionString: process.env.DATABASE_URL });
  await client.connect();
  return client;
}

export async function demoProgramId(client: Client): Promise<string> {
  const { rows } = await client.query("select id from programs where name = 'Demo Coffee Club'");
  return rows[0].id;
}

/** A fresh, unclaimed postcard of the demo program. */
export async function newPostcard(client: Client): Promise<string> {
  const program = await demoProgramId(client);
  const { rows } = await client.query(
    "insert into claim_codes (program_id, code) values ($1, public.new_claim_code()) returning code",
    [program],
  );
  return rows[0].code;
}

/** A new member of the demo program with a balance, made through the hardened functions. */
export async function newMember(client: Client, points: number, program?: string): Promise<string> {
  const programId = program ?? (await demoProgramId(client));
  const { rows } = await client.query(
    "select public.create_member_pass($1, 'MBR') -> 'data' ->> 'external_id' as id",
    [programId],
  );
  const id = rows[0].id;
  if (points > 0) {
    await client.query("select public.process_membership_transaction($1, $2, $3, 'EARN', 'opening balance')", [
      programId,
      id,
      points,
    ]);
  }
  return id;
}

/** A new reward in the demo program's catalog, under `name` made unique; no stock is as many as are asked for.
 * Its button at the counter reads "<name> · <cost> points" and, with a stock, ", <n> left". */
export async function newReward(
  client: Client,
  name: string,
  pointsCost: number,
  stock: number | null = null,
): Promise<string> {
  const unique = `${name} ${Date.now()}-${Math.floor(Math.random() * 1e6)}`;
  await client.query("insert into rewards (program_id, name, points_cost, stock) values ($1, $2, $3, $4)", [
    await demoProgramId(client),
    unique,
    pointsCost,
    stock,
  ]);
  return unique;
}

/** Points taken from a member elsewhere (another till), after a page has shown the balance. */
export async function takenElsewhere(client: Client, externalId: string, points: number) {
  const { rows } = await client.query(
    "select public.process_membership_transaction($1, $2, $3, 'REDEEM', 'another till') as answer",
    [await demoProgramId(client), externalId, points],
  );
  expect(rows[0].answer.success).toBe(true);
}

export async function balance(client: Client, externalId: string): Promise<number> {
  const { rows } = await client.query("select points from passes_master where external_id = $1", [externalId]);
  return rows[0].points;
}

/** Waits until the page's browser code has taken over, so clicks go through it rather than plain form posts. */
export async function hydrated(page: Page) {
  await page.waitForFunction(() => (window as any).__loyaltyHydrated === true);
}

export async function signIn(page: Page, who: { email: string; password: string }) {
  await page.goto("/login");
  await hydrated(page);
  await page.getByLabel("Email").fill(who.email);
  await page.getByLabel("Password").fill(who.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByRole("navigation", { name: "Main" })).toBeVisible();
  await hydrated(page);
}

export async function screenshot(page: Page, testInfo: TestInfo) {
  const name = testInfo.title.replace(/[^a-z0-9]+/gi, "-").toLowerCase();
  await page.screenshot({ path: `screenshots/${name}.png`, fullPage: true });
}
