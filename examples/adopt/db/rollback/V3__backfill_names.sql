UPDATE users SET given_name = NULL, family_name = NULL WHERE given_name IS NOT NULL OR family_name IS NOT NULL;
