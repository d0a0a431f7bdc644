//! The recovery plan's SQL text.

use super::*;

#[test]
fn a_trigger_is_retargeted_at_the_copy() {
    let def = "CREATE TRIGGER reservations_10_sync_columns BEFORE INSERT OR UPDATE ON public.reservations FOR EACH ROW EXECUTE FUNCTION phasegate_sync_reservation_columns()";
    assert_eq!(
        retarget_trigger(def, "pg_temp.x").unwrap(),
        "CREATE TRIGGER reservations_10_sync_columns BEFORE INSERT OR UPDATE ON pg_temp.x FOR EACH ROW EXECUTE FUNCTION phasegate_sync_reservation_columns()"
    );
    assert_eq!(retarget_trigger("CREATE TRIGGER t BEFORE INSERT ON \"My\" FOR EACH ROW EXECUTE FUNCTION f()", "y").unwrap(), "CREATE TRIGGER t BEFORE INSERT ON y FOR EACH ROW EXECUTE FUNCTION f()");
}
