//! The sign-in screen: an email and a password, sent once until the server answers.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use loyalty_core::LoyaltyError;
use loyalty_core::wire::StaffSession;

use super::{App, Awaiting, Command, Tone};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SignInField {
    #[default]
    Email,
    Password,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SignInForm {
    pub email: String,
    pub password: String,
    pub focus: SignInField,
}

impl SignInForm {
    fn field_mut(&mut self) -> &mut String {
        match self.focus {
            SignInField::Email => &mut self.email,
            SignInField::Password => &mut self.password,
        }
    }
}

impl App {
    pub(super) fn on_sign_in_key(&mut self, key: KeyEvent) -> Vec<Command> {
        let signing_in = self.signing_in();
        let form = &mut self.sign_in;
        match key.code {
            KeyCode::Tab | KeyCode::BackTab | KeyCode::Down | KeyCode::Up => {
                form.focus = match form.focus {
                    SignInField::Email => SignInField::Password,
                    SignInField::Password => SignInField::Email,
                };
            }
            KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::ALT) => {
                form.field_mut().push(c)
            }
            KeyCode::Backspace => {
                form.field_mut().pop();
            }
            KeyCode::Enter if form.focus == SignInField::Email => {
                form.focus = SignInField::Password;
            }
            KeyCode::Enter if !signing_in => {
                let email = form.email.trim().to_owned();
                if email.is_empty() || form.password.is_empty() {
                    self.tell(Tone::Error, "Enter your email and your password.");
                    return Vec::new();
                }
                let password = form.password.clone();
                self.awaiting = Some(Awaiting::SignIn {
                    email: email.clone(),
                });
                return vec![Command::SignIn { email, password }];
            }
            _ => {}
        }
        Vec::new()
    }

    pub(super) fn on_signed_in(
        &mut self,
        result: Result<StaffSession, LoyaltyError>,
    ) -> Vec<Command> {
        if self.signing_in() {
            self.awaiting = None;
        }
        self.sign_in.password.clear();
        match result {
            Ok(session) => {
                self.tell(
                    Tone::Success,
                    format!(
                        "Signed in as {} at {}.",
                        session.staff_name, session.program_name
                    ),
                );
                self.session = Some(session);
                self.health.reachable = Some(true);
                self.release_queue();
                self.counter.clear_line();
                vec![Command::LoadRewards]
            }
            Err(e) => {
                self.sign_in.focus = SignInField::Password;
                self.fail(e);
                Vec::new()
            }
        }
    }
}
