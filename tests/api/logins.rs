//! /logins, /alerts, /ack, /silence and the buttons on pushed alerts.
