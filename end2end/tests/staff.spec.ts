import { expect, test } from "@playwright/test";
import { MANAGER, db, hydrated, screenshot, signIn } from "./support";

test.afterEach(async ({ page }, testInfo) => {
  await screenshot(page, testInfo);
});

test("a manager switches off a signed-in clerk, who is signed out and told; a new password and switching on let them back, and they change it on their account page", async ({
  page,
  browser,
}) => {
  const client = await db();
  const suffix = Date.now().toString(36);
  const name = `Temp Clerk ${suffix}`;
  const clerk = { email: `temp-${suffix}@demo.test`, password: "first-password-1" };

  await signIn(page, MANAGER);
  await page.goto("/staff");
  await hydrated(page);
  await page.getByLabel("Name", { exact: true }).fill(name);
  await page.getByLabel("Email", { exact: true }).fill(clerk.email);
  await page.getByLabel("Password (at least 10 characters)").fill(clerk.password);
  await page.getByRole("button", { name: "Add", exact: true }).click();
  const status = page.getByRole("status");
  await expect(status).toContainText(`Added ${name}`);
  const row = page.locator(`tr[data-staff="${clerk.email}"]`);
  await expect(row).toContainText("Active");

  const till = await browser.newPage();
  await signIn(till, clerk);

  await page.getByRole("button", { name: `Switch off ${name}` }).click();
  await expect(status).toContainText(`Switched off ${name}: they are signed out everywhere and cannot sign in.`);
  await expect(row).toContainText("Switched off");
  const sessions = await client.query(
    "select count(*)::int as n from staff_sessions s join staff st on st.id = s.staff_id where st.email = $1",
    [clerk.email],
  );
  expect(sessions.rows[0].n).toBe(0);

  // The till's next page is the sign-in page, and signing in says why it does not work.
  await till.reload();
  await expect(till).toHaveURL(/\/login/);
  await hydrated(till);
  await till.getByLabel("Email").fill(clerk.email);
  await till.getByLabel("Password").fill(clerk.password);
  await till.getByRole("button", { name: "Sign in" }).click();
  await expect(till.getByRole("status")).toContainText(
    "This account has been switched off. Ask a manager to switch it back on.",
  );

  await row.getByText("New password…").click();
  await page.getByLabel(`New password for ${name} (at least 10 characters)`).fill("second-password-2");
  await page.getByRole("button", { name: "Set password" }).click();
  await expect(status).toContainText(`New password set for ${name}: they are signed out everywhere.`);
  await page.getByRole("button", { name: `Switch on ${name}` }).click();
  await expect(status).toContainText(`Switched on ${name}: they can sign in again.`);
  await expect(row).toContainText("Active");

  await till.getByLabel("Password").fill(clerk.password);
  await till.getByRole("button", { name: "Sign in" }).click();
  await expect(till.getByRole("status")).toContainText("That email and password do not match.");
  await signIn(till, { email: clerk.email, password: "second-password-2" });
  await expect(till.locator(".topbar .who")).toContainText(`${name} · clerk`);

  // The clerk makes the password their own from their account page, reached from their name.
  await till.locator(".topbar .who").click();
  await expect(till).toHaveURL(/\/account$/);
  await expect(till.getByRole("heading", { name: "Your account" })).toBeVisible();
  await till.getByLabel("Current password").fill("second-password-2");
  await till.getByLabel("New password (at least 10 characters)").fill("third-password-3");
  await till.getByRole("button", { name: "Change password" }).click();
  await expect(till.getByRole("status")).toContainText("Your password has been changed.");
  const other = await browser.newPage();
  await signIn(other, { email: clerk.email, password: "third-password-3" });
  await other.close();
  await till.close();
  await client.end();
});

test("a manager sets the program's time zone on their account page and the history reads it", async ({ page }) => {
  const client = await db();
  await signIn(page, MANAGER);
  await page.goto("/account");
  await hydrated(page);
  const zone = page.getByLabel("Days and times are on this clock");
  await expect(zone).toHaveValue("UTC");
  await zone.fill("Europe/Paris");
  await page.getByRole("button", { name: "Save time zone" }).click();
  await expect(page.getByRole("status").first()).toContainText("Days and times are now on Europe/Paris time.");
  const { rows } = await client.query("select time_zone from programs where name = 'Demo Coffee Club'");
  expect(rows[0].time_zone).toBe("Europe/Paris");
  await page.goto("/history");
  await expect(page.getByRole("columnheader", { name: "Time (Europe/Paris)" })).toBeVisible();

  // Back to UTC, for the other tests' days.
  await page.goto("/account");
  await hydrated(page);
  await page.getByLabel("Days and times are on this clock").fill("UTC");
  await page.getByRole("button", { name: "Save time zone" }).click();
  await expect(page.getByRole("status").first()).toContainText("Days and times are now on UTC time.");
  await client.end();
});
